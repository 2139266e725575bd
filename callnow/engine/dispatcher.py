"""The dispatcher: claims queued requests from the store and runs each as a callback.

It is the one place where stored requests become calls. It claims a backlog a batch at a time.
Before it dials anything it checks the number again against the destination policy and asks
billing whether the owner's budget can pay for the call (and for how long), so a request forced
past the web layer still cannot cost money; a page or tenant the provider suspended after the
request was queued is not dialled either. The owner leg's write-ahead row goes into the claim's
transaction, so the owner's INVITE leaves without another round of writes; a callback that then
does not start takes the row back, and the request is claimed again. Leases are renewed while
calls run; requests abandoned by a dead engine are ended as `interrupted`, and the legs it left
up are taken down with the CANCEL or BYE each leg row keeps for that; charges are posted
when an answered leg ends, and swept again at start and in every housekeeping round, so a crash
or a busy database between "leg ended" and "charge posted" still ends with exactly one charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing.ledger import (
    NotRateable,
    plan_call,
    reserve,
)
from callnow.billing.policy import policy_from
from callnow.config import Settings
from callnow.domain.acceptance import acceptance_of
from callnow.domain.calls import LegDialling, LegRole, PreparedHangup
from callnow.domain.decision import Outcome as Decided
from callnow.domain.decision import decide
from callnow.domain.destination_policy import PrefixList, check_destination
from callnow.domain.flow import FlowLimits, Outcome, RequestFacts
from callnow.domain.page import is_paused
from callnow.domain.phone import InvalidNumber, parse_visitor_number
from callnow.domain.rating import BudgetRefused
from callnow.domain.request_state import RequestState, is_terminal
from callnow.domain.scheduling import dial_time_refusal
from callnow.engine.charges import ChargePoster
from callnow.engine.runner import CallbackEngine, CallbackHandle
from callnow.i18n import DEFAULT_LANGUAGE, use_language
from callnow.metrics import Metrics
from callnow.store import queue
from callnow.store.abandoned import AbandonedLeg, abandoned_legs, record_abandoned_end
from callnow.store.db import transaction
from callnow.store.models import CallRequest
from callnow.store.profiles import destination_policy, preferences_of
from callnow.store.recorder import request_ref, take_back, write_ahead
from callnow.store.requests import move

log = structlog.get_logger(__name__)

# A request whose callback cannot even be started this many times is failed, not retried.
MAX_START_ATTEMPTS = 3
# A backlog is claimed this many at a time: one transaction for the lot, each started at once.
CLAIM_BATCH = 10
# On stopping, a claim under way is given this long to finish (SQLite may wait for its lock).
STOP_CLAIMING_WITHIN_S = 10.0
# After wake-ups in a row whose claims found nothing (what is queued waits for a held or full
# owner), look again at most this often, not once per post that wakes the loop.
FRUITLESS_CLAIM_GAP_S = 0.02
# Requests in these states have the visitor dialled or talking: a drain that runs out of time
# ends them as the visitor's cancel would (completed), not as failed.
VISITOR_REACHED = frozenset({RequestState.CALLING_VISITOR, RequestState.CONNECTED})
# Unposted charges one housekeeping round posts at most; the next round takes the rest. It
# looks at legs ended this recently (the start's sweep looks at all): records that reach the
# store late tell billing themselves when they land.
SWEEP_BATCH = 100
SWEEP_WINDOW = timedelta(days=1)


def default_engine_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Work:
    request_id: int
    facts: RequestFacts
    limits: FlowLimits
    # Stored with the claim: the owner is dialled without writing first.
    owner_leg: LegDialling


@dataclass(frozen=True)
class ClaimRound:
    works: list[Work]
    # The batch was full: more may be waiting, so claim again before the next wake-up.
    more: bool
    # A request waits for room (its owner, its tenant or this engine is at the limit): claim
    # again when a call ends. Otherwise a call's end is no reason to look. An owner held after
    # a busy phone does not count: no call's end ends the hold; the poll finds their requests.
    held_back: bool


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: CallbackEngine,
        settings: Settings,
        *,
        limits: FlowLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holding: Callable[[], Collection[int]] = frozenset,
        end_abandoned: Callable[[PreparedHangup], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        charges: ChargePoster | None = None,
    ) -> None:
        """`holding`: requests whose callbacks ended but whose records are still on their way
        to the store; their leases are renewed with those of the running callbacks.
        `end_abandoned`: the telephony's way to end a leg a dead engine left up.
        `charges`: posts charges, shared with the recorder that posts them as legs end."""
        self._sessions = sessions
        self._engine = engine
        self._settings = settings
        limits = limits or FlowLimits(
            owner_ring_s=settings.sip.owner_ring_timeout_s,
            visitor_ring_s=settings.sip.visitor_ring_timeout_s,
            max_call_duration_s=settings.sip.max_call_duration_s,
        )
        # An engine setting, whatever timings the caller passed: the claim honours the hold.
        self._limits = replace(limits, owner_busy_hold_s=settings.engine.owner_busy_hold_s)
        self._clock = clock
        self._holding = holding
        self._end_abandoned = end_abandoned
        self.engine_id = settings.engine.engine_id or default_engine_id()
        self._policy = policy_from(settings.billing)
        self._charges = charges or ChargePoster(sessions, self._policy)
        self._platform_prefixes = PrefixList(
            blocked=tuple(settings.abuse.blocked_prefixes),
            allowed=tuple(settings.abuse.allowed_prefixes),
        )
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[int, CallbackHandle] = {}
        self._stopping = False
        self._draining = False
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._cancel_task: asyncio.Task[None] | None = None
        self._cancelled: set[int] = set()
        self._held_back = False
        self._calls_ended = 0
        self.housekeeping_hooks: list[Callable[[Session, datetime], object]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._recover)
        await self._end_abandoned_legs()
        self._task = asyncio.create_task(self._claim_loop(), name="claim loop")
        self._cancel_task = asyncio.create_task(self._watch_cancels(), name="cancel watcher")
        self._housekeeping_task = asyncio.create_task(
            self._housekeeping(), name="lease housekeeping"
        )

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            # The claim loop ends its round rather than being cut off: a request it claimed
            # must be started or handed back, not left with its owner leg's row.
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_CLAIMING_WITHIN_S)
            except TimeoutError:
                log.warning("claim_did_not_end", within_s=STOP_CLAIMING_WITHIN_S)
            except Exception:
                pass  # reported below, with any other task that ended by itself
        for task in (self._task, self._housekeeping_task, self._cancel_task):
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                # A bug ended it early; the engine must still stop.
                log.exception("engine_task_failed", task=task.get_name())
        await self._engine.shutdown("engine_shutdown")
        for request_id in list(self._running):
            await asyncio.to_thread(self._release, request_id)

    async def drain(self, within_s: float, hurry: asyncio.Event | None = None) -> None:
        """Stop claiming, let the callbacks in progress end by themselves (their leases still
        renewed) for up to `within_s` or until `hurry` is set, then stop: what is left is hung
        up cleanly (BYE or CANCEL on both legs, records and charges stored), never left to end
        as interrupted."""
        self._draining = True
        if self._metrics is not None:
            self._metrics.draining.set(1)
        self._wake.set()
        if self._task is not None and not self._task.done():
            # As in `stop`: a claim under way ends its round (what it claimed is handed back).
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_CLAIMING_WITHIN_S)
        log.info(
            "draining: %s callbacks in progress, waiting up to %g s", len(self._running), within_s
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self._running and loop.time() < deadline and not (hurry and hurry.is_set()):
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
        if self._running:
            log.warning("drain over: hanging up %s callbacks in progress", len(self._running))
            for handle in list(self._running.values()):
                if handle.request_state in VISITOR_REACHED:
                    handle.cancel("engine_stopping")
        await self.stop()

    @property
    def draining(self) -> bool:
        return self._draining and not self._stopping

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll. Safe from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def claiming(self) -> bool:
        """The claim loop is alive: what is queued will be dialled."""
        return self._task is not None and not self._task.done()

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        engine = self._settings.engine
        loop = asyncio.get_running_loop()
        woken = False  # the last wait ended with a wake-up, not at the poll interval
        fruitless_wakes = 0  # wake-ups in a row whose claim started nothing
        last_claim = loop.time()
        while not self._stopping and not self._draining:
            if fruitless_wakes >= 2:
                # A flood of posts for an owner whose phone said busy woke the loop for each,
                # and each claim read the held backlog in vain. One look per gap serves them all;
                # an ordinary wake-up (a claim that found its request) is never delayed.
                await asyncio.sleep(max(0.0, last_claim + FRUITLESS_CLAIM_GAP_S - loop.time()))
            last_claim = loop.time()
            # Cleared before the claim, so a request queued while it runs still wakes us.
            self._wake.clear()
            ended_before = self._calls_ended
            claimed = ClaimRound([], more=False, held_back=True)
            room = engine.max_concurrent_calls - len(self._running)
            if room > 0:
                try:
                    claimed = await asyncio.to_thread(self._claim, min(room, CLAIM_BATCH))
                except Exception:
                    log.exception("claim_failed")
                for work in claimed.works:
                    if self._stopping or self._draining:  # for the next engine
                        await self._hand_back(work, at_once=True)
                    else:
                        await self._start(work)
            self._held_back = claimed.held_back
            fruitless_wakes = fruitless_wakes + 1 if woken and not claimed.works else 0
            # A call that ended while the claim ran may have made the room it lacked.
            if claimed.more or (claimed.held_back and self._calls_ended != ended_before):
                woken = False
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), engine.poll_interval_s)
                woken = True
            except TimeoutError:
                woken = False

    def _claim(self, limit: int) -> ClaimRound:
        """Claim up to `limit` requests and check each may cost money; refused ones end here
        as failed, in the same transaction."""
        engine = self._settings.engine
        now = self._clock()
        with transaction(self._sessions) as session:
            while True:
                requests, held_back = queue.claim_batch(
                    session,
                    self.engine_id,
                    engine.lease_s,
                    now,
                    limit=limit,
                    max_per_extension=engine.max_calls_per_extension,
                    max_per_tenant=engine.max_calls_per_tenant,
                )
                if not requests:
                    return ClaimRound([], more=False, held_back=held_back)
                if self._metrics is not None:
                    self._metrics.claims.inc(len(requests))
                works = []
                for position, request in enumerate(requests):
                    if position > 0:  # what this batch reserved so far counts against budgets
                        session.flush()
                    # Each request's claim and its reservation go in one UPDATE.
                    with session.no_autoflush:
                        works.append(self._prepare(session, request, now))
                dialable = [work for work in works if work is not None]
                if dialable:
                    return ClaimRound(dialable, len(requests) == limit, held_back)

    def _prepare(self, session: Session, request: CallRequest, now: datetime) -> Work | None:
        profile = request.profile
        extension = profile.extension
        tenant = extension.tenant
        if request.cancel_requested_at is not None:
            move(request, RequestState.CANCELLED, "visitor_cancelled", now=now)
            request.lease_expires_at = None
            return None
        if request.claim_count > MAX_START_ATTEMPTS:
            return self._refuse(request, "the call could not be started", now)
        if request.scheduled_for is not None:
            # Booked hours or days ago: the owner's page and rules are asked again now.
            refusal = self._booking_refusal(request, now)
            if refusal is not None:
                log.info("booking_not_dialled", request_ref=request_ref(request.id), reason=refusal)
                move(request, RequestState.REJECTED, refusal, now=now)
                request.lease_expires_at = None
                return None
        # The provider may have suspended the page or its tenant since the request was queued
        # (or confirmed on the web): nothing of theirs is dialled from then on.
        if profile.suspended_at is not None:
            return self._refuse(request, "the page is suspended", now)
        if tenant.suspended_at is not None:
            return self._refuse(request, "the tenant is suspended", now)
        policy = destination_policy(tenant, self._platform_prefixes)
        refusal = check_destination(request.number_e164, policy)
        if refusal is not None:
            return self._refuse(request, f"destination refused: {refusal}", now)
        if request.number_on_do_not_call:
            return self._refuse(request, "the number is on the do-not-call list", now)
        if request.reserved_minor is not None:
            # A stale reservation of this very request (an earlier claim) must not count.
            request.reserved_minor = None
            session.flush()
        # The owner hears the prompts, the cost phrase included, in their own language (loaded
        # with the claim).
        owner_language = extension.owner.language if extension.owner else DEFAULT_LANGUAGE
        with use_language(owner_language) as language:
            plan = plan_call(
                session,
                request.id,
                now,
                max_call_duration_s=self._settings.sip.max_call_duration_s,
                policy=self._policy,
                flow_limits=self._limits,
            )
        if isinstance(plan, NotRateable):
            return self._refuse(request, "no price applies to this number", now)
        if isinstance(plan, BudgetRefused):
            return self._refuse(request, "the owner's call budget is used up", now)
        facts = RequestFacts(
            request_ref=request_ref(request.id),
            visitor_e164=request.number_e164,
            owner_internal_number=extension.internal_number,
            owner_external_e164=extension.external_number,
            acceptance=acceptance_of(request.decision),
            caller_name=request.caller_name,
            region=tenant.region,
            cost_phrase=plan.cost_phrase,
            language=language,
        )
        reserve(session, request, plan)
        # Its own time, not the claim's: the leg starts once the claim's queries are done.
        owner_leg = LegDialling(LegRole.OWNER, extension.internal_number, self._clock())
        write_ahead(session, request.id, owner_leg)
        limits = replace(self._limits, budget_max_duration_s=plan.max_duration_s)
        return Work(request.id, facts, limits, owner_leg)

    def _booking_refusal(self, request: CallRequest, now: datetime) -> str | None:
        """Why a booked request may not be dialled now: its time has passed, or the owner's page
        no longer takes it (turned off, do not allow, suspended, paused, outside the hours, a
        reject rule). Budget, destination and limits are checked as for any request."""
        assert request.scheduled_for is not None
        late = dial_time_refusal(request.scheduled_for, now)
        if late is not None:
            return late
        profile = request.profile
        if is_paused(profile.paused_until, now):
            return "paused"
        try:
            number = parse_visitor_number(request.number_e164, profile.extension.tenant.region)
        except InvalidNumber:
            return "the number is not valid"
        decision = decide(preferences_of(profile), number, request.caller_name, now)
        return str(decision.reason) if decision.outcome is Decided.REJECT else None

    def _refuse(self, request: CallRequest, reason: str, now: datetime) -> None:
        log.info("request_not_dialled", request_ref=request_ref(request.id), reason=reason)
        move(request, RequestState.FAILED, reason, now=now)
        request.lease_expires_at = None
        return None

    async def _start(self, work: Work) -> None:
        # The callback's task copies this context, so it starts with the ref bound too.
        with structlog.contextvars.bound_contextvars(request_ref=work.facts.request_ref):
            await self._start_callback(work)

    async def _start_callback(self, work: Work) -> None:
        try:
            handle = await self._engine.start_callback(
                work.facts, work.limits, written_ahead=work.owner_leg
            )
        except Exception:
            # Nothing was dialled: once its row is taken back and the lease runs out, the
            # request is claimed again.
            log.exception("callback_start_failed", request_ref=request_ref(work.request_id))
            await self._hand_back(work, at_once=False)
            return
        self._running[work.request_id] = handle
        if self._metrics is not None:
            self._metrics.in_progress.set(len(self._running))
        handle.outcome.add_done_callback(lambda done: self._finished(work.request_id, done))

    def _finished(self, request_id: int, outcome: asyncio.Future[Outcome]) -> None:
        self._running.pop(request_id, None)
        self._cancelled.discard(request_id)
        # The recorder freed the lease with the final state; one that did not reach the store
        # keeps its lease, so a live engine ends it as interrupted once the lease runs out.
        ended = not outcome.cancelled() and is_terminal(outcome.result().state)
        if self._metrics is not None:
            self._metrics.in_progress.set(len(self._running))
            if not outcome.cancelled():
                self._metrics.callback_ended(outcome.result().state.value)
        if self._loop is not None and not ended:
            self._loop.create_task(asyncio.to_thread(self._release, request_id))
        self._calls_ended += 1
        if self._held_back:  # the owner or tenant whose call ended may have room again
            self._wake.set()

    def _release(self, request_id: int) -> None:
        with transaction(self._sessions) as session:
            queue.release(session, request_id, self.engine_id)

    async def _hand_back(self, work: Work, *, at_once: bool) -> None:
        """A claimed request that was never dialled goes back to the queue: without its owner
        leg's row, or a live engine would end it as interrupted, and without its budget
        reservation. `at_once` frees it for another engine now; otherwise it is claimed again
        once the lease runs out."""

        def undo() -> None:
            with transaction(self._sessions) as session:
                take_back(session, work.request_id, work.owner_leg)
                queue.unclaim(session, work.request_id, self.engine_id, keep_lease=not at_once)

        try:
            await asyncio.to_thread(undo)
        except Exception:
            # Left as it is, the request ends as interrupted: never dialled twice.
            log.exception("hand_back_failed", request_ref=request_ref(work.request_id))

    # -- visitors cancelling a call in progress -----------------------------------------------

    async def _watch_cancels(self) -> None:
        """A visitor's cancel reaches a running callback within a poll interval."""
        while not self._stopping:
            await asyncio.sleep(min(0.5, self._settings.engine.poll_interval_s))
            running = [i for i in self._running if i not in self._cancelled]
            if not running:
                continue
            try:
                wanted = await asyncio.to_thread(self._cancel_requested, running)
            except Exception:
                log.exception("cancel_read_failed")
                continue
            for request_id in wanted:
                handle = self._running.get(request_id)
                if handle is not None:
                    self._cancelled.add(request_id)
                    handle.cancel("visitor_cancelled")

    def _cancel_requested(self, request_ids: list[int]) -> list[int]:
        with self._sessions() as session:
            return queue.cancel_requested_among(session, request_ids)

    # -- leases, recovery, charges -----------------------------------------------------------

    async def _housekeeping(self) -> None:
        interval = max(1.0, self._settings.engine.lease_s / 3)
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self._renew_and_recover)
                await self._end_abandoned_legs()
            except Exception:
                log.exception("housekeeping_failed")

    def _renew_and_recover(self, *, at_start: bool = False) -> None:
        now = self._clock()
        with transaction(self._sessions) as session:
            ours = sorted({*self._running, *self._holding()})
            queue.renew(session, ours, self.engine_id, self._settings.engine.lease_s, now)
            # A running engine never declares its own calls lost: a lease that ran out while
            # it was starved, or whose final records are still on their way, is still its own.
            # At start nothing is its own yet (an engine id may be fixed in the settings).
            spared = None if at_start else self.engine_id
            taken_over = queue.interrupt_abandoned(session, now, sparing=spared)
            if self._metrics is not None and taken_over:
                self._metrics.lease_takeovers.inc(len(taken_over))
            for hook in self.housekeeping_hooks:
                hook(session, now)
        if at_start:
            self._charges.sweep(limit=None)
        else:
            self._charges.sweep(limit=SWEEP_BATCH, ended_since=now - SWEEP_WINDOW)

    async def _end_abandoned_legs(self) -> None:
        """Take down the calls of legs whose engine died (their requests were just ended as
        interrupted, here or by another engine): CANCEL or BYE from what the leg row keeps,
        then record the leg's end, and post the charge of an answered one."""
        for leg in await asyncio.to_thread(self._abandoned_legs):
            if leg.hangup is None:
                log.warning("abandoned_leg_without_hangup", leg_id=leg.leg_id)
            elif self._end_abandoned is not None:
                try:
                    await self._end_abandoned(leg.hangup)
                except Exception:
                    log.exception("abandoned_leg_hangup_failed", leg_id=leg.leg_id)
                    continue  # tried again next round
                log.info("abandoned_leg_ended", method=leg.hangup.method, leg_id=leg.leg_id)
            ended = await asyncio.to_thread(self._record_abandoned_end, leg)
            if ended and leg.answered_at is not None:
                await asyncio.to_thread(self._charges.post, leg.leg_id)

    def _abandoned_legs(self) -> list[AbandonedLeg]:
        with self._sessions() as session:
            return abandoned_legs(session)

    def _record_abandoned_end(self, leg: AbandonedLeg) -> bool:
        with transaction(self._sessions) as session:
            return record_abandoned_end(session, leg, self._clock())

    def _recover(self) -> None:
        """At start: end what a dead engine left mid-call, and post charges it never posted."""
        self._renew_and_recover(at_start=True)
