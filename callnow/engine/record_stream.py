"""The engine's records reach the store in order, and none is lost while the database is away.

Every unit a callback writes goes through its request's lane, so a request's facts land in the
order they happened; requests do not wait for each other (on PostgreSQL their transactions
run side by side, as before). A callback waits for its unit only so long (`wait_s`): a unit
that has not landed by then, or whose attempt failed, goes into the engine's `RecordJournal`
and is retried until it lands; the callback carries on (its phones must not wait for a
database). A unit that can never land as a whole (the request was ended meanwhile, say by
another engine) is stored fact by fact, so a leg's answer and record are never lost with a
state change that no longer fits.

A unit with a leg's write-ahead row is different: it decides whether that leg may be dialled,
so it is tried once, in its turn, and its caller hears the result. It is never journalled: a
leg that was not dialled must not get a row later.

Units are not journalled up front, only once they are slow (`journal_after_s`, well before the
callback stops waiting): the journal costs an fsync, and an engine that dies while a unit is
in flight for less than that leaves a call that crash recovery ends anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from callnow.domain.calls import LegDialling, StoreWrite
from callnow.engine.ports import CallbackRecorder
from callnow.engine.record_journal import JournalledUnit, RecordJournal
from callnow.store.recorder import request_id_of

log = logging.getLogger(__name__)

# Refusals that another attempt cannot change: a move the domain forbids (IllegalTransition is
# a ValueError), an unknown request, a duplicate row.
REFUSED = (ValueError, LookupError, IntegrityError)


@dataclass(eq=False)
class _Unit:
    request_ref: str
    writes: tuple[StoreWrite, ...]
    landed: asyncio.Future[None]
    dials: bool
    journal_seq: int | None = None
    # A dial's unit whose caller stopped waiting: not written late (see the module's doc).
    abandoned: bool = False


class RecordStream:
    """A `CallbackRecorder` in front of the store's recorder."""

    def __init__(
        self,
        store: CallbackRecorder,
        journal: RecordJournal | None = None,
        *,
        wait_s: float = 2.0,
        journal_after_s: float = 0.25,
        retry_max_s: float = 5.0,
    ) -> None:
        """`wait_s`: how long a callback waits for its unit at most. `journal_after_s`: how
        long a unit may be in flight before it is journalled (an fsync), which bounds what an
        engine that dies while its database is slow can lose."""
        self._store = store
        self._journal = journal
        self._wait_s = wait_s
        self._journal_after_s = journal_after_s
        self._retry_max_s = retry_max_s
        # Units not landed yet, in the order they were written (a dict keeps it).
        self._unlanded: dict[_Unit, None] = {}
        # Per request ref: its units in order; the first one is being stored.
        self._lanes: dict[str, deque[_Unit]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self._started = False

    async def start(self) -> None:
        """Store what was left unlanded before (by this engine id or by a dead engine on this
        host), then take new units. Returns once those old units have landed: the dispatcher
        must not judge requests whose last records are still on their way."""
        left = self._journal.open() if self._journal is not None else []
        self._started = True
        replayed = [
            self._enqueue(unit.request_ref, unit.writes, journal_seq=seq) for seq, unit in left
        ]
        if replayed:
            await asyncio.gather(*(unit.landed for unit in replayed))

    async def stop(self, within_s: float = 10.0) -> None:
        """Give the units still queued time to land; the rest stay in the journal for the
        next start."""
        if not self._started:
            return
        self._started = False
        if self._unlanded:
            await asyncio.wait([unit.landed for unit in self._unlanded], timeout=within_s)
        for unit in self._unlanded:
            self._journalled(unit)
        for task in list(self._drains):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._journal is not None:
            self._journal.close()
        if self._unlanded:
            log.warning("%d unit(s) of records kept for the next start", len(self._unlanded))

    def pending_request_ids(self) -> set[int]:
        """Requests with records not stored yet: their engine still holds them."""
        return {request_id_of(ref) for ref in self._lanes}

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        unit = self._enqueue(request_ref, tuple(writes))
        if unit.dials:
            try:
                await asyncio.shield(unit.landed)
            except asyncio.CancelledError:
                unit.abandoned = True
                raise
            return
        journal_after_s = min(self._journal_after_s, self._wait_s)
        try:
            async with asyncio.timeout(journal_after_s):
                await asyncio.shield(unit.landed)
            return
        except TimeoutError:
            # Slow: durable from here on (an engine that dies now loses nothing of it).
            self._journalled(unit)
        try:
            async with asyncio.timeout(self._wait_s - journal_after_s):
                await asyncio.shield(unit.landed)
        except TimeoutError:
            # Late: the callback goes on, and the request's lane keeps at it.
            log.warning("callback %s: records delayed; kept until they are stored", request_ref)

    def _enqueue(
        self,
        request_ref: str,
        writes: tuple[StoreWrite, ...],
        *,
        journal_seq: int | None = None,
    ) -> _Unit:
        loop = asyncio.get_running_loop()
        dials = any(isinstance(write, LegDialling) for write in writes)
        unit = _Unit(request_ref, writes, loop.create_future(), dials, journal_seq)
        self._unlanded[unit] = None
        lane = self._lanes.get(request_ref)
        if lane is not None:
            lane.append(unit)  # its drain is running and takes it in turn
            return unit
        lane = self._lanes[request_ref] = deque([unit])
        drain = loop.create_task(self._drain(request_ref, lane), name=f"records:{request_ref}")
        self._drains.add(drain)
        drain.add_done_callback(self._drains.discard)
        return unit

    async def _drain(self, request_ref: str, lane: deque[_Unit]) -> None:
        try:
            while lane:
                unit = lane[0]
                await self._store_unit(unit)
                lane.popleft()
                self._unlanded.pop(unit, None)
        finally:
            # Nothing ran between the empty check and here: no unit can have been added.
            if self._lanes.get(request_ref) is lane and not lane:
                del self._lanes[request_ref]

    async def _store_unit(self, unit: _Unit) -> None:
        try:
            if unit.dials:
                await self._try_once(unit)
            else:
                await self._land(unit)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must not stop the request's later records
            log.exception("callback %s: storing records failed", unit.request_ref)
            if not unit.landed.done():
                unit.landed.set_exception(error)

    async def _try_once(self, unit: _Unit) -> None:
        if unit.abandoned:
            unit.landed.cancel()
            return
        try:
            await self._store.write(unit.request_ref, unit.writes)
        except Exception as error:
            unit.landed.set_exception(error)
            unit.landed.exception()  # retrieved: the caller may have stopped waiting
        else:
            unit.landed.set_result(None)

    async def _land(self, unit: _Unit) -> None:
        if not await self._until_decided(unit, unit.writes):
            # Refused as a whole: store each fact that still applies on its own.
            for write in unit.writes:
                if not await self._until_decided(unit, (write,)):
                    log.error("callback %s: %s refused for good", unit.request_ref, write)
        if unit.journal_seq is not None and self._journal is not None:
            self._journal.landed(unit.journal_seq)
        unit.landed.set_result(None)

    async def _until_decided(self, unit: _Unit, writes: tuple[StoreWrite, ...]) -> bool:
        """True once `writes` landed, False if the store refused them for good."""
        delay = 0.1
        while True:
            try:
                await self._store.write(unit.request_ref, writes)
                return True
            except REFUSED as error:
                log.warning("callback %s: records refused: %s", unit.request_ref, error)
                return False
            except Exception as error:
                self._journalled(unit)
                log.warning(
                    "callback %s: could not store %s (%s); retrying in %.1f s",
                    unit.request_ref,
                    ", ".join(type(write).__name__ for write in writes),
                    type(error).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    def _journalled(self, unit: _Unit) -> None:
        if unit.dials or unit.journal_seq is not None or self._journal is None:
            return
        if unit.landed.done():
            return
        unit.journal_seq = self._journal.add(JournalledUnit(unit.request_ref, unit.writes))
