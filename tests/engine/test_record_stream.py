"""The engine's records reach the store in order and are never lost while the database is away.

First against a store that fails as told (the stream's own rules), then against the real
database (SQLite and PostgreSQL) held locked by another connection while a call ends, with an
engine that dies before the lock goes: the next engine stores the records from the journal, and
the answered leg ends with its answer time and exactly one charge.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from callnow.billing.ledger import post_charge_with_retry
from callnow.bootstrap import seed_default_deck
from callnow.domain.calls import (
    LegAnsweredAt,
    LegDialling,
    LegHangupPrepared,
    LegRecorded,
    LegRole,
    OwnerBusyUntil,
    PreparedHangup,
    StateChanged,
    StoreWrite,
    build_call_record,
)
from callnow.domain.request_state import IllegalTransition, RequestState
from callnow.engine.record_journal import SUFFIX, JournalledUnit, RecordJournal, decode, encode
from callnow.engine.record_stream import RecordStream
from callnow.store import queue
from callnow.store.billing_models import ChargeRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest
from callnow.store.recorder import StoreRecorder, request_ref
from tests.support.world import queued_request

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OWNER, VISITOR = LegRole.OWNER, LegRole.VISITOR


class TellableStore:
    """A store that is down while `down` is set and refuses units that hold a refused write."""

    def __init__(self) -> None:
        self.down = False
        self.landed: list[tuple[str, list[StoreWrite]]] = []
        self.refuse: set[type] = set()
        self.attempts = 0
        # Request refs whose writes wait for their event: a slow transaction.
        self.held: dict[str, asyncio.Event] = {}

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        self.attempts += 1
        await asyncio.sleep(0)
        if request_ref in self.held:
            await self.held[request_ref].wait()
        if self.down:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        if any(type(write) in self.refuse for write in writes):
            raise IllegalTransition("the request was ended meanwhile")
        self.landed.append((request_ref, list(writes)))


def state(name: RequestState, at: datetime = T0) -> StateChanged:
    return StateChanged(name, name.value, at)


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_request_s_units_land_in_order_and_no_request_waits_for_another() -> None:
    store = TellableStore()
    store.held["req-1"] = asyncio.Event()  # req-1's transaction is slow
    stream = RecordStream(store, wait_s=5)
    await stream.start()

    first = asyncio.create_task(stream.write("req-1", [state(RequestState.CALLING_OWNER)]))
    second = asyncio.create_task(stream.write("req-1", [LegAnsweredAt(OWNER, T0)]))
    await stream.write("req-2", [state(RequestState.CALLING_OWNER)])

    assert store.landed == [("req-2", [state(RequestState.CALLING_OWNER)])]
    store.held["req-1"].set()
    await asyncio.gather(first, second)
    await stream.stop()
    assert [(ref, type(writes[0]).__name__) for ref, writes in store.landed] == [
        ("req-2", "StateChanged"),
        ("req-1", "StateChanged"),
        ("req-1", "LegAnsweredAt"),
    ]


async def test_a_late_unit_is_journalled_and_lands_once_the_database_is_back(tmp_path) -> None:
    store = TellableStore()
    journal = RecordJournal(tmp_path, "engine-a")
    stream = RecordStream(store, journal, wait_s=0.05, retry_max_s=0.05)
    await stream.start()
    store.down = True

    await stream.write("req-7", [LegAnsweredAt(OWNER, T0)])  # returns: the phones go on

    assert store.landed == []
    assert stream.pending_request_ids() == {7}
    [line] = journal_lines(journal.path)
    assert line["ref"] == "req-7" and line["writes"][0]["kind"] == "answered"
    store.down = False
    async with asyncio.timeout(5):
        while stream.pending_request_ids():
            await asyncio.sleep(0.01)
    assert store.landed == [("req-7", [LegAnsweredAt(OWNER, T0)])]
    assert journal.path.read_text() == ""  # nothing left to replay
    await stream.stop()
    assert not journal.path.exists()  # and a clean stop leaves no file behind


async def test_a_unit_refused_as_a_whole_keeps_the_facts_that_still_apply() -> None:
    store = TellableStore()
    store.refuse = {StateChanged}
    stream = RecordStream(store)
    await stream.start()
    answered = LegAnsweredAt(VISITOR, T0)

    await stream.write("req-3", [answered, state(RequestState.COMPLETED)])
    await stream.stop()

    assert store.landed == [("req-3", [answered])]


async def test_a_dial_s_row_is_tried_once_and_its_refusal_reaches_the_caller(tmp_path) -> None:
    store = TellableStore()
    journal = RecordJournal(tmp_path, "engine-a")
    stream = RecordStream(store, journal, wait_s=0.05)
    await stream.start()
    store.down = True

    with pytest.raises(OperationalError):
        await stream.write("req-4", [LegDialling(OWNER, "201", T0)])

    await asyncio.sleep(0.2)
    assert store.attempts == 1  # never retried: that leg is simply not dialled
    assert journal.path.read_text() == ""  # and never written late
    await stream.stop()


async def test_records_left_by_a_dead_engine_land_before_the_next_engine_starts(
    tmp_path,
) -> None:
    live_journal = RecordJournal(tmp_path, "live")  # another engine on this host, alive
    live_journal.open()
    store = TellableStore()
    store.down = True
    dead = RecordStream(store, RecordJournal(tmp_path, "dead"), wait_s=0.01)
    await dead.start()
    await dead.write("req-5", [LegAnsweredAt(OWNER, T0)])
    await dead.write("req-5", [state(RequestState.COMPLETED)])
    await dead.stop(within_s=0)  # its file is unlocked now, as after a SIGKILL
    live_journal.add(JournalledUnit("req-99", (LegAnsweredAt(OWNER, T0),)))
    store.down = False

    successor = RecordStream(store, RecordJournal(tmp_path, "successor"))
    await successor.start()

    assert [writes for _, writes in store.landed] == [
        [LegAnsweredAt(OWNER, T0)],
        [state(RequestState.COMPLETED)],
    ]
    assert not (tmp_path / f"dead{SUFFIX}").exists()
    assert "req-99" in live_journal.path.read_text()  # a live engine's records are not taken
    await successor.stop()
    live_journal.close()


async def test_a_line_torn_by_a_crash_mid_write_is_skipped(tmp_path) -> None:
    answered = {"kind": "answered", "role": "owner", "at": T0.isoformat()}
    good = {"seq": 1, "ref": "req-6", "writes": [answered]}
    torn = '{"seq": 2, "ref": "req-6", "wri'
    (tmp_path / f"dead{SUFFIX}").write_text(json.dumps(good) + "\n" + torn)
    store = TellableStore()

    stream = RecordStream(store, RecordJournal(tmp_path, "next"))
    await stream.start()

    assert store.landed == [("req-6", [LegAnsweredAt(OWNER, T0)])]
    await stream.stop()


def test_every_kind_of_record_comes_back_from_the_journal_as_it_went_in() -> None:
    hangup = PreparedHangup("BYE", "BYE sip:x SIP/2.0\r\n\r\n", "127.0.0.1", 5062, "c1", "m1")
    writes = [
        LegDialling(OWNER, "201", T0),
        LegAnsweredAt(OWNER, T0),
        LegHangupPrepared(OWNER, hangup),
        LegRecorded(leg_record("req-1", OWNER, "201", T0, T0, T0 + timedelta(seconds=9))),
        OwnerBusyUntil(T0 + timedelta(seconds=30)),
        state(RequestState.COMPLETED),
    ]

    assert [decode(json.loads(json.dumps(encode(write)))) for write in writes] == writes


# -- against the real database -------------------------------------------------------------------


CALLING_OWNER = RequestState.CALLING_OWNER
CALLING_VISITOR = RequestState.CALLING_VISITOR
CONNECTED = RequestState.CONNECTED


def leg_record(ref, role, destination, started, answered, ended):
    return build_call_record(
        request_ref=ref,
        role=role,
        destination=destination,
        started_at=started,
        answered_at=answered,
        ended_at=ended,
        sip_code=200,
    )


@contextmanager
def database_locked(db_url: str) -> Iterator[None]:
    """Another connection holds the tables the engine writes: SQLite's whole file, PostgreSQL's
    call legs and requests. Writers wait (PostgreSQL) or fail once the busy wait ends."""
    if db_url.startswith("sqlite"):
        connection = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(db_url)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE call_legs, call_requests IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


async def test_an_answered_call_ended_while_the_database_was_locked_and_the_engine_died(
    world, db_url, tmp_path
) -> None:
    with transaction(world.sessions) as session:
        seed_default_deck(session)
        request = queued_request(session, "alice", "+61290375678", now=T0)
        queue.claim_batch(session, "dead", 30, T0, limit=1)
    ref = request_ref(request.id)

    def post_charge(leg_id: int) -> None:
        post_charge_with_retry(world.sessions, leg_id)

    def engine_named(name: str) -> RecordStream:
        recorder = StoreRecorder(world.sessions, on_answered_leg_recorded=post_charge)
        return RecordStream(recorder, RecordJournal(tmp_path, name), wait_s=0.3)

    stream = engine_named("dead")
    await stream.start()
    at = [T0 + timedelta(seconds=s) for s in range(100)]
    visitor = "+61290375678"
    await stream.write(ref, [state(CALLING_OWNER, at[0]), LegDialling(OWNER, "001002", at[0])])
    await stream.write(ref, [LegAnsweredAt(OWNER, at[3])])
    await stream.write(ref, [state(CALLING_VISITOR, at[9]), LegDialling(VISITOR, visitor, at[9])])
    await stream.write(ref, [LegAnsweredAt(VISITOR, at[14]), state(CONNECTED, at[14])])

    with database_locked(db_url):
        records = [
            LegRecorded(leg_record(ref, VISITOR, visitor, at[9], at[14], at[80])),
            LegRecorded(leg_record(ref, OWNER, "001002", at[0], at[3], at[80])),
            state(RequestState.COMPLETED, at[80]),
        ]
        # Returns while the lock is held: the callback closes, its records wait in the journal.
        await stream.write(ref, records)
        await stream.stop(within_s=0)  # and the engine dies before the database is back
        assert '"kind":"recorded"' in (tmp_path / f"dead{SUFFIX}").read_text()

    successor = engine_named("successor")
    await successor.start()
    await successor.stop()

    with world.sessions() as session:
        stored = session.get(CallRequest, request.id)
        assert stored.state == RequestState.COMPLETED.value
        legs = {leg.role: leg for leg in session.scalars(select(CallLeg))}
        assert legs["requester"].answered_at == at[14]
        assert legs["requester"].disposition == "answered"
        assert legs["owner"].answered_at == at[3]
        charges = session.scalars(select(ChargeRow)).all()
        assert [charge.call_leg_id for charge in charges] == [legs["requester"].id]
