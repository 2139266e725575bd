"""The thin shell around `CallbackFlow`: feeds it telephony events, executes its commands.

One `CallbackRun` per callback. Events (from adapters, timers and the web) go through one
queue and are handled strictly one at a time, each event's commands executed in order before
the next event is read, so the flow sees the world in a single, consistent order.

Store writes (state changes, write-ahead leg rows, call records) are gathered and written as one
unit before the next dial and at the end of each event: a dial's write-ahead row and the state
change before it cost one transaction, not two, and a finished call's records and final state
one more. A leg whose write-ahead row the caller already stored (the dispatcher does so for the
owner's leg, in the claim's transaction) is dialled at once; what was gathered before it is
written after the INVITE left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from callnow.domain.calls import (
    FailureCause,
    LegDialling,
    LegHangupPrepared,
    LegRecorded,
    LegRole,
    OwnerBusyUntil,
    StateChanged,
    StoreWrite,
)
from callnow.domain.flow import (
    Abort,
    Bridge,
    CallbackFlow,
    Cancel,
    CancelTimer,
    Command,
    DialOwner,
    DialVisitor,
    Event,
    Finish,
    FlowLimits,
    HangupLeg,
    LegFailed,
    Outcome,
    OwnerBusyFor,
    PlayPrompt,
    RecordLeg,
    RequestFacts,
    RequestStateChanged,
    Start,
    StartTimer,
    StopPrompt,
    TimerFired,
)
from callnow.domain.request_state import RequestState, is_terminal
from callnow.engine.leg_times import LegStopwatch
from callnow.engine.ports import CallbackRecorder, CallChannel, Telephony

# Events with key=value fields; request_ref comes from the context bound around each callback.
# Wrapping the stdlib logger (not structlog.get_logger) keeps every line on the stdlib path,
# configured or not, where handlers and level filters (and tests) see it.
log = structlog.wrap_logger(logging.getLogger(__name__))

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class CallbackHandle:
    """What the caller of `start_callback` keeps: the live state, a way to cancel, the outcome."""

    def __init__(self, run: CallbackRun) -> None:
        self._run = run

    @property
    def request_ref(self) -> str:
        return self._run.flow.facts.request_ref

    @property
    def request_state(self) -> RequestState:
        return self._run.flow.request_state

    @property
    def outcome(self) -> asyncio.Future[Outcome]:
        """Resolves once the flow finished and the telephony channel is closed."""
        return self._run.outcome

    def done(self) -> bool:
        return self._run.outcome.done()

    def cancel(self, reason: str) -> None:
        """The visitor or the owner cancelled on the web; ignored once the callback finished."""
        self._run.deliver(Cancel(reason))

    def abort(self, reason: str) -> None:
        """Hang up everything and fail the request (engine shutdown, lost lease)."""
        self._run.deliver(Abort(reason))


class CallbackEngine:
    def __init__(
        self,
        telephony: Telephony,
        recorder: CallbackRecorder,
        *,
        limits: FlowLimits | None = None,
        clock: Clock = utc_now,
        action_timeout_s: float = 10.0,
    ) -> None:
        self._telephony = telephony
        self._recorder = recorder
        self._limits = limits or FlowLimits()
        self._clock = clock
        # An adapter call that never returns would freeze the callback with its legs up.
        self._action_timeout_s = action_timeout_s
        self._active: dict[str, CallbackHandle] = {}

    @property
    def active(self) -> dict[str, CallbackHandle]:
        """Callbacks in progress, by request ref."""
        return dict(self._active)

    async def start_callback(
        self,
        facts: RequestFacts,
        limits: FlowLimits | None = None,
        *,
        written_ahead: LegDialling | None = None,
    ) -> CallbackHandle:
        """Open the telephony channel and start dialling the owner; returns at once.

        `written_ahead` is a leg's write-ahead row the caller has already stored: that leg is
        dialled without writing first. If the channel cannot be opened, the error propagates
        and nothing was dialled or written: the request is still queued, for the caller to
        retry or fail (and to take back a row it wrote ahead).
        """
        ref = facts.request_ref
        if ref in self._active:
            raise ValueError(f"callback {ref} is already running")
        run = CallbackRun(
            CallbackFlow(facts, limits or self._limits),
            self._recorder,
            clock=self._clock,
            action_timeout_s=self._action_timeout_s,
            written_ahead=written_ahead,
        )
        handle = CallbackHandle(run)
        self._active[ref] = handle  # before the await, so a concurrent start sees it
        try:
            await run.open(self._telephony)
        except BaseException:
            del self._active[ref]
            raise
        run.outcome.add_done_callback(lambda _: self._active.pop(ref, None))
        run.begin()
        return handle

    async def shutdown(self, reason: str = "engine_shutdown") -> None:
        """Abort every callback in progress and wait until each has hung up and recorded."""
        handles = list(self._active.values())
        for handle in handles:
            handle.abort(reason)
        await asyncio.gather(*(h.outcome for h in handles), return_exceptions=True)


class CallbackRun:
    def __init__(
        self,
        flow: CallbackFlow,
        recorder: CallbackRecorder,
        *,
        clock: Clock,
        action_timeout_s: float,
        written_ahead: LegDialling | None = None,
    ) -> None:
        self.flow = flow
        self._recorder = recorder
        self._clock = clock
        self._action_timeout_s = action_timeout_s
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event | LegHangupPrepared] = asyncio.Queue()
        # Taken from the queue ahead of their turn (see `_take_queued_cancels`), handled next.
        self._taken: deque[Event | LegHangupPrepared] = deque()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._legs = LegStopwatch(flow.facts.request_ref)
        self._channel: CallChannel | None = None
        # Held so the running task is not garbage-collected.
        self._task: asyncio.Task[None] | None = None
        self._recorded: set[LegRole] = set()
        self._unwritten: list[StoreWrite] = []
        self._written_ahead = written_ahead
        self._finished_with: Outcome | None = None
        self.outcome: asyncio.Future[Outcome] = self._loop.create_future()

    @property
    def request_ref(self) -> str:
        return self.flow.facts.request_ref

    async def open(self, telephony: Telephony) -> None:
        self._channel = await telephony.open_call(self.flow.facts, self.deliver)

    def begin(self) -> None:
        self._queue.put_nowait(Start())
        self._task = self._loop.create_task(self._drive(), name=f"callback:{self.request_ref}")

    def deliver(self, event: Event | LegHangupPrepared) -> None:
        """The event sink: callable from any thread; always queues on the engine's loop."""
        if self._loop.is_closed():
            return
        if _running_loop() is self._loop:
            # Already on the loop (the adapters hand events over in batches): no wake-up needed.
            self._queue.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def _drive(self) -> None:
        # Bound inside the task, whose context is its own copy: every line logged while this
        # callback runs (structlog or stdlib loggers alike) carries its request_ref.
        with structlog.contextvars.bound_contextvars(request_ref=self.request_ref):
            await self._drive_events()

    async def _drive_events(self) -> None:
        try:
            while not self.flow.finished:
                event = self._taken.popleft() if self._taken else await self._queue.get()
                if isinstance(event, LegHangupPrepared):
                    self._keep_hangup(event)
                    await self._write()
                    continue  # the flow need not know
                answer = self._legs.observe(event, self._clock())
                if answer is not None:
                    # Stored before the flow acts on the answer: whatever happens to the engine
                    # or the database later, an answered leg keeps the proof it must be billed.
                    self._unwritten.append(answer)
                    await self._write()
                for command in self.flow.handle(event):
                    await self._execute(command)
                self._take_queued_cancels()
                await self._write()
        except Exception as error:  # a bug in the flow or the engine; never leave a leg up
            log.exception("callback_crashed_hanging_up")
            await self._emergency_stop(f"engine_error: {type(error).__name__}")
        finally:
            await self._close()

    def _take_queued_cancels(self) -> None:
        """A dial's CANCEL is prepared with its INVITE, so it is queued by the time the event
        that dialled ends: it joins that event's unit (one transaction, not two). Only the
        CANCELs at the head of the queue: a BYE is a unit of its own, with its answer, and
        nothing overtakes an event the flow has not seen."""
        while True:
            if not self._taken:
                try:
                    self._taken.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    return
            head = self._taken[0]
            if not isinstance(head, LegHangupPrepared) or head.hangup.ends_an_answered_leg:
                return
            self._taken.popleft()
            self._keep_hangup(head)

    def _keep_hangup(self, prepared: LegHangupPrepared) -> None:
        """Store how to end the leg should this engine die. A BYE is prepared when the leg's
        200 OK arrives, before the answer's media step: the answer is noted and stored with it,
        so no crash can leave a BYE without its answer time (nor an answered leg unbilled).
        The answer event that follows then finds it noted and stores nothing more."""
        if prepared.role in self._recorded:
            return  # the leg is over
        if prepared.hangup.ends_an_answered_leg:
            answer = self._legs.answered(prepared.role, self._clock())
            if answer is not None:
                self._unwritten.append(answer)
        self._unwritten.append(prepared)

    async def _execute(self, command: Command) -> None:
        channel = self._channel
        assert channel is not None
        match command:
            case DialOwner(number=number):
                await self._dial(LegRole.OWNER, number, lambda: channel.dial_owner(number))
            case DialVisitor(number=number, caller_id=caller_id):
                await self._dial(
                    LegRole.VISITOR, number, lambda: channel.dial_visitor(number, caller_id)
                )
            case PlayPrompt(kind=kind, text=text, language=language):
                await self._or_abort(
                    "play_prompt_failed", channel.play_prompt(kind, text, language=language)
                )
            case StopPrompt():
                await self._or_log("stop_prompt", channel.stop_prompt())
            case Bridge():
                await self._or_abort("bridge_failed", channel.bridge())
            case HangupLeg(role=role, reason=reason):
                await self._hang_up(role, reason)
            case StartTimer(name=name, seconds=seconds):
                self._cancel_timer(name)
                self._timers[name] = self._loop.call_later(
                    seconds, self._queue.put_nowait, TimerFired(name)
                )
            case CancelTimer(name=name):
                self._cancel_timer(name)
            case RecordLeg(role=role, failure_cause=cause, sip_code=code):
                self._record(role, cause, code)
            case OwnerBusyFor(seconds=seconds):
                # Written with the terminal state that follows: no claim sees one without the other.
                until = self._clock() + timedelta(seconds=seconds)
                self._unwritten.append(OwnerBusyUntil(until))
            case RequestStateChanged(state=state, reason=reason):
                self._report(state, reason)
            case Finish(outcome=outcome):
                self._finished_with = outcome

    async def _dial(self, role: LegRole, number: str, dial: Callable[[], Awaitable[None]]) -> None:
        at = self._clock()
        self._legs.dialled(role, number, at)
        ahead, self._written_ahead = self._written_ahead, None
        if ahead is None or (ahead.role, ahead.destination) != (role, number):
            self._unwritten.append(LegDialling(role, number, at))
            if not await self._write():
                # Without the write-ahead row a crash could dial this leg twice: do not dial.
                self._queue.put_nowait(LegFailed(role, FailureCause.FAILED))
                return
        # Else its row is stored already: dial now, and write what was gathered before it (the
        # state change) at the end of this event, after the INVITE.
        try:
            async with asyncio.timeout(self._action_timeout_s):
                await dial()
        except Exception:
            log.exception("dial_failed", role=role.value)
            self._queue.put_nowait(LegFailed(role, FailureCause.FAILED))

    async def _or_abort(self, reason: str, action: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._action_timeout_s):
                await action
        except Exception:
            log.exception("action_failed_aborting", reason=reason)
            self._queue.put_nowait(Abort(reason))

    async def _or_log(self, what: str, action: Awaitable[None]) -> None:
        # A failed hang-up or stop changes nothing the flow could act on; the channel's close()
        # cleans up. A failed write must not stop the hang-ups that follow it.
        try:
            async with asyncio.timeout(self._action_timeout_s):
                await action
        except Exception:
            log.exception("action_failed", action=what)

    async def _hang_up(self, role: LegRole, reason: str) -> None:
        assert self._channel is not None
        self._legs.ended(role, self._clock())
        await self._or_log(f"hangup {role}", self._channel.hangup(role, reason))

    def _record(self, role: LegRole, cause: FailureCause | None, code: int | None) -> None:
        record = self._legs.record(role, self._clock(), cause, code)
        if record is None or role in self._recorded:
            log.error("unexpected_leg_record", role=role.value)
            return
        self._recorded.add(role)
        self._unwritten.append(LegRecorded(record))

    def _report(self, state: RequestState, reason: str) -> None:
        self._unwritten.append(StateChanged(state, reason, self._clock()))

    async def _write(self) -> bool:
        """Store what is gathered as one unit; False if it could not be stored."""
        if not self._unwritten:
            return True
        writes, self._unwritten = self._unwritten, []
        if await self._try_write(writes):
            return True
        # A refused write-ahead row must not take the facts gathered with it down too.
        facts = [write for write in writes if not isinstance(write, LegDialling)]
        if facts and len(facts) < len(writes):
            await self._try_write(facts)
        return False

    async def _try_write(self, writes: Sequence[StoreWrite]) -> bool:
        try:
            async with asyncio.timeout(self._action_timeout_s):
                await self._recorder.write(self.request_ref, writes)
        except Exception:
            what = ", ".join(type(write).__name__ for write in writes)
            log.exception("store_write_failed", writes=what)
            return False
        return True

    async def _emergency_stop(self, reason: str) -> None:
        """What the flow would have done on Abort, without the flow: hang up and record every
        leg still up, and fail the request unless it already reached an end."""
        for role in self._legs.dialled_roles() - self._recorded:
            if self._channel is not None:
                await self._hang_up(role, reason)
            self._record(role, None, None)
        if self._finished_with is None:
            if not is_terminal(self.flow.request_state):
                self._report(RequestState.FAILED, reason)
            self._finished_with = Outcome(RequestState.FAILED, reason)
        await self._write()

    async def _close(self) -> None:
        for name in list(self._timers):
            self._cancel_timer(name)
        if self._channel is not None:
            await self._or_log("close", self._channel.close())
            # The channel holds our `deliver`: without this the two form a cycle, and each
            # callback's objects wait for the cyclic collector, which then pauses the engine.
            self._channel = None
        # Resolved only now, so whoever awaits the outcome knows the telephony is released.
        outcome = self._finished_with or Outcome(RequestState.FAILED, "engine_stopped")
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
