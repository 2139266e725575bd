"""`Leg`: the asyncio-facing handle of one outbound call leg.

Events arrive on the asyncio loop (posted from the sippy thread), are recorded in
`leg.record` for call records, queued for `next_event()` / `async for`, and passed to the
optional `on_event` callback. Actions (`hangup`, `reinvite`) are handed to the sippy thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from callnow.telephony import sdp as sdp_edit
from callnow.telephony.sip.events import (
    TERMINAL_EVENTS,
    Answered,
    Ended,
    EndedBy,
    Failed,
    FailureCause,
    HangupPrepared,
    LegEvent,
    RemoteSdpChanged,
    Ringing,
)
from callnow.telephony.sip.reactor import post_to_loop, reactor
from callnow.telephony.sip.uac import ReinviteRejected, UacDriver

log = logging.getLogger(__name__)

# RFC 3261 14.1: after a 491 the owner of the Call-ID (we place every leg, so always us)
# re-sends its re-INVITE after a random 2.1 to 4 s.
GLARE_WAIT_S = (2.1, 4.0)
# Glares in a row before a re-INVITE is given up (a peer that always answers 491).
MAX_GLARE_RETRIES = 3


class LegState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    FAILED = "failed"
    ENDED = "ended"


@dataclass(slots=True)
class LegRecord:
    """Facts for the call record (UTC timestamps; SIP final response code of the INVITE)."""

    call_id: str
    dialed_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    final_code: int | None = None
    final_reason: str | None = None
    failure_cause: FailureCause | None = None
    ended_by: EndedBy | None = None

    @property
    def talk_seconds(self) -> float:
        """Answered duration (0 when never answered); what billing rates."""
        if self.answered_at is None or self.ended_at is None:
            return 0.0
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())


EventCallback = Callable[["Leg", LegEvent], None]


class Leg:
    """One outbound leg. Created by `SipStack.dial()`; do not instantiate directly."""

    def __init__(
        self,
        driver: UacDriver,
        loop: asyncio.AbstractEventLoop,
        record: LegRecord,
        on_event: EventCallback | None = None,
    ) -> None:
        self._driver = driver
        self._loop = loop
        self._queue: asyncio.Queue[LegEvent] = asyncio.Queue()
        self._on_event = on_event
        self._terminal = asyncio.Event()
        self.record = record
        self.state = LegState.DIALING
        self.remote_sdp: str | None = None
        self.local_sdp: str = driver.spec.sdp
        # The request that would end this leg now, for crash recovery (see HangupPrepared);
        # `on_hangup_prepared` hears of each new one.
        self.prepared_hangup: HangupPrepared | None = None
        self.on_hangup_prepared: Callable[[HangupPrepared], None] | None = None

    def __repr__(self) -> str:
        return f"<Leg {self.call_id} {self.state}>"

    @property
    def call_id(self) -> str:
        return self.record.call_id

    @property
    def done(self) -> bool:
        """True once Failed or Ended was delivered."""
        return self._terminal.is_set()

    # -- events -----------------------------------------------------------------------------

    def _deliver(self, event: LegEvent) -> None:
        """Called on the asyncio loop for every event, in order."""
        if self.done:
            return
        self._apply(event)
        self._queue.put_nowait(event)
        if isinstance(event, TERMINAL_EVENTS):
            self._terminal.set()
        if self._on_event is not None:
            try:
                self._on_event(self, event)
            except Exception:
                log.exception("on_event callback failed for %s on %s", event, self.call_id)

    def _apply(self, event: LegEvent) -> None:
        rec = self.record
        if isinstance(event, Ringing):
            self.state = LegState.RINGING
            rec.ringing_at = rec.ringing_at or event.at
        elif isinstance(event, Answered):
            self.state = LegState.ANSWERED
            self.remote_sdp = event.sdp
            rec.answered_at = event.at
            rec.final_code, rec.final_reason = 200, "OK"
        elif isinstance(event, Failed):
            self.state = LegState.FAILED
            rec.ended_at = event.at
            rec.final_code, rec.final_reason = event.code, event.reason
            rec.failure_cause = event.cause
        elif isinstance(event, Ended):
            self.state = LegState.ENDED
            rec.ended_at = event.at
            rec.ended_by = event.by
        elif isinstance(event, RemoteSdpChanged):
            self.remote_sdp = event.sdp

    def emit_from_sippy(self, event: LegEvent | HangupPrepared) -> None:
        """The driver's `emit`: runs on the sippy thread, hands the event to the loop."""
        if isinstance(event, HangupPrepared):
            post_to_loop(self._loop, self._note_hangup, event)
        else:
            post_to_loop(self._loop, self._deliver, event)

    def _note_hangup(self, prepared: HangupPrepared) -> None:
        if self.done:
            return
        self.prepared_hangup = prepared
        if self.on_hangup_prepared is not None:
            try:
                self.on_hangup_prepared(prepared)
            except Exception:
                log.exception("on_hangup_prepared callback failed on %s", self.call_id)

    async def next_event(self, timeout: float | None = None) -> LegEvent:
        """The next event; raises TimeoutError after `timeout` seconds without one."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[LegEvent]:
        """Iterate events until (and including) the terminal Failed/Ended."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, TERMINAL_EVENTS):
                return

    async def wait_done(self, timeout: float | None = None) -> LegRecord:
        """Wait until the leg failed or ended; returns the record."""
        async with asyncio.timeout(timeout):
            await self._terminal.wait()
        return self.record

    # -- actions ----------------------------------------------------------------------------

    async def hangup(self, reason: str = "") -> None:
        """CANCEL an unanswered leg (Failed/CANCELLED) or BYE an answered one (Ended/LOCAL).

        Idempotent; a no-op on a finished leg. The terminal event is delivered before this
        returns.
        """
        if self.done:
            return
        await reactor.call(self._driver.hangup, reason)

    async def reinvite(self, sdp: str, timeout: float = 10.0) -> str | None:
        """Send a re-INVITE offering `sdp`; returns the peer's answer SDP.

        A 491 (the peer's own re-INVITE crossed ours) is retried after RFC 3261's random wait,
        up to MAX_GLARE_RETRIES times. Raises `ReinviteRejected` on another non-2xx (the call
        goes on) and RuntimeError if the leg is not answered or another re-INVITE is in flight.
        """
        for attempt in range(MAX_GLARE_RETRIES + 1):
            try:
                remote = await self._reinvite_once(sdp, timeout)
            except ReinviteRejected as exc:
                if exc.code != 491 or attempt == MAX_GLARE_RETRIES or self.done:
                    raise
                wait = random.uniform(*GLARE_WAIT_S)
                log.info("re-INVITE on %s met 491; again in %.1fs", self.call_id, wait)
                await asyncio.sleep(wait)
                continue
            self.local_sdp = sdp
            if remote is not None:
                self.remote_sdp = remote
            return remote
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reinvite_once(self, sdp: str, timeout: float) -> str | None:
        future: asyncio.Future[str | None] = self._loop.create_future()

        def done(remote_sdp: str | None, error: BaseException | None) -> None:
            post_to_loop(self._loop, _resolve, future, remote_sdp, error)

        try:
            await reactor.call(self._driver.reinvite, sdp, done)
        except BaseException:
            future.cancel()  # never resolved by the driver now
            raise
        return await asyncio.wait_for(future, timeout)

    def local_answer(self, offer: str | None) -> str:
        """Our last SDP turned into an RFC 3264 answer to `offer` (direction mirrored)."""
        if not offer:
            return self.local_sdp
        wanted = sdp_edit.answer_direction(sdp_edit.direction(offer))
        return sdp_edit.with_direction(self.local_sdp, wanted)

    async def answer_update(self, sdp: str) -> bool:
        """Answer the peer's pending re-INVITE (dialled with `defer_updates`) with 200 and
        `sdp`. False when none is pending any more (answered locally after a timeout)."""
        answered = await reactor.call(self._driver.answer_update, sdp)
        if answered:
            self.local_sdp = sdp
        return bool(answered)

    async def reject_update(self, code: int, reason: str) -> bool:
        """Refuse the peer's pending re-INVITE (e.g. 488); the call goes on as before."""
        return bool(await reactor.call(self._driver.answer_update, None, code, reason))


def _resolve(
    future: asyncio.Future[str | None], value: str | None, error: BaseException | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
