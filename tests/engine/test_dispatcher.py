"""The dispatcher's claim loop, on SQLite and PostgreSQL, with an engine that dials nothing.

It claims when woken and not otherwise: a request queued while a claim is running is claimed
at once, not at the next poll, and a claim that emptied the queue is not followed by another.
The owner leg's write-ahead row is stored with the claim; a request that is then never dialled
(its callback cannot start, or the engine stops) gets it back, with its budget reservation freed,
and is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Literal

import pytest
from sqlalchemy import select

from callnow.bootstrap import seed_default_deck
from callnow.config import EngineSettings
from callnow.domain.calls import LegDialling, LegRole, PreparedHangup
from callnow.domain.flow import FlowLimits, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.dispatcher import FRUITLESS_CLAIM_GAP_S, Dispatcher
from callnow.store import do_not_call, profiles, queue
from callnow.store import requests as request_store
from callnow.store.billing_models import ChargeRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, User, utcnow
from callnow.store.recorder import request_ref
from tests.support.statements import statements_sent
from tests.support.waiting import until
from tests.support.world import queued_request

# Far longer than any test waits: a request claimed in time was claimed because of a wake-up.
POLL_S = 30.0


class StartsNothing:
    """A CallbackEngine that notes which callbacks it was asked to start and runs none."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.facts: list[RequestFacts] = []
        self.limits: list[FlowLimits] = []
        self.written_ahead: list[LegDialling | None] = []
        self.outcomes: dict[str, asyncio.Future] = {}
        self.changed = asyncio.Event()
        self.shut_down = False

    async def start_callback(
        self, facts: RequestFacts, limits: FlowLimits, *, written_ahead: LegDialling | None = None
    ) -> SimpleNamespace:
        self.started.append(facts.request_ref)
        self.facts.append(facts)
        self.limits.append(limits)
        self.written_ahead.append(written_ahead)
        self.changed.set()
        outcome = asyncio.get_running_loop().create_future()
        self.outcomes[facts.request_ref] = outcome
        return SimpleNamespace(outcome=outcome, cancel=lambda reason: None)

    def end(self, sessions, request_id: int) -> None:
        """The callback ends as failed: stored as the recorder stores it, then reported."""
        with transaction(sessions) as session:
            request_store.move_by_id(
                session, request_id, RequestState.FAILED, "test", now=utcnow(), free_lease=True
            )
        self.outcomes[request_ref(request_id)].set_result(
            SimpleNamespace(state=RequestState.FAILED)
        )

    async def shutdown(self, reason: str = "") -> None:
        self.shut_down = True

    async def wait_for_starts(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.started) < count:
                self.changed.clear()
                await self.changed.wait()


class WatchedWake(asyncio.Event):
    """The claim loop's wake-up, telling the test when the loop has parked: it waits to be
    woken and nothing has woken it yet, so it will claim nothing more until something does."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = False

    async def wait(self) -> Literal[True]:
        self.parked = not self.is_set()
        try:
            return await super().wait()
        finally:
            self.parked = False


def watch_wake(dispatcher: Dispatcher) -> WatchedWake:
    wake = dispatcher._wake = WatchedWake()
    return wake


async def parked(wake: WatchedWake) -> None:
    """Until the claim loop waits with nothing to wake it: any claim that what happened before
    was going to cause has been made by then."""
    await until(lambda: wake.parked and not wake.is_set(), what="the claim loop parked")


def dispatcher_for(world, engine) -> Dispatcher:
    settings = world.settings.model_copy(update={"engine": EngineSettings(poll_interval_s=POLL_S)})
    return Dispatcher(world.sessions, engine, settings)


@pytest.fixture
def dispatcher_world(world):
    with transaction(world.sessions) as session:
        seed_default_deck(session)
    engine = StartsNothing()
    return world, dispatcher_for(world, engine), engine


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[None]:
    await dispatcher.start()
    try:
        yield
    finally:
        await dispatcher.stop()


def count_claims(monkeypatch, during_claim=lambda call: None) -> list[int]:
    calls: list[int] = []
    claim_batch = queue.claim_batch

    def counted(*args, **kwargs):
        calls.append(len(calls) + 1)
        claimed = claim_batch(*args, **kwargs)
        during_claim(len(calls))
        return claimed

    monkeypatch.setattr(queue, "claim_batch", counted)
    return calls


async def test_a_claim_loop_that_died_is_reported_and_the_engine_still_stops(
    dispatcher_world, caplog
) -> None:
    _, dispatcher, engine = dispatcher_world

    class BrokenWake(asyncio.Event):
        def clear(self) -> None:
            raise RuntimeError("a bug in the claim loop")

    assert not dispatcher.claiming
    dispatcher._wake = BrokenWake()
    await dispatcher.start()
    await until(lambda: not dispatcher.claiming)  # what the health check reads
    await dispatcher.stop()
    assert engine.shut_down
    assert "engine_task_failed" in caplog.text and "claim loop" in caplog.text


async def test_a_request_queued_while_a_claim_runs_is_claimed_without_waiting_for_the_poll(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world
    arrived: list[int] = []

    def a_visitor_posts_meanwhile(call: int) -> None:
        if call == 1:  # the dispatcher's first look finds nothing; a request lands meanwhile
            with transaction(world.sessions) as session:
                arrived.append(queued_request(session, "alice", "+61290375678").id)
            dispatcher.wake()

    count_claims(monkeypatch, a_visitor_posts_meanwhile)

    async with running(dispatcher):
        await engine.wait_for_starts(1)

    assert engine.started == [request_ref(arrived[0])]


async def test_each_callback_speaks_its_owners_language_cost_phrase_included(
    dispatcher_world,
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        alice.language = "de"
        queued_request(session, "alice", "+61290375678")
        queued_request(session, "bob", "+61290375679")
    with statements_sent(world.sessions.kw["bind"]) as sent:
        async with running(dispatcher):
            await engine.wait_for_starts(2)

    # Loaded with the claim: no query of its own for the owner.
    assert not [s for s in sent if "FROM users" in s and "call_requests" not in s]
    spoken = {facts.language: facts.cost_phrase for facts in engine.facts}
    assert spoken == {"de": "ein Ortsgespräch, 12 Cent", "en": "a national call, 10 cents a minute"}


async def test_a_claim_that_emptied_the_queue_is_not_followed_by_another(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375678")
        queued_request(session, "bob", "+61290375679")
    claims = count_claims(monkeypatch)
    wake = watch_wake(dispatcher)

    async with running(dispatcher):
        await engine.wait_for_starts(2)
        await parked(wake)  # a needless second claim would come before the loop parks

    assert claims == [1]  # both in one batch, and the batch was not full: nothing more to look for


async def test_a_flood_of_wake_ups_for_a_held_owner_is_looked_at_once_a_gap_not_once_each(
    dispatcher_world, monkeypatch
) -> None:
    """Every post wakes the loop; while what is queued waits for an owner held after a busy
    phone, the claims that find nothing come at most one per gap, whatever the posts' rate."""
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375678")
        alice = profiles.by_callnow_id(session, "alice")
        assert alice is not None
        alice.extension.busy_until = utcnow() + timedelta(hours=1)
    claims = count_claims(monkeypatch)
    flood_s = 0.5

    async with running(dispatcher):
        loop = asyncio.get_running_loop()
        ends = loop.time() + flood_s
        while loop.time() < ends:
            dispatcher.wake()  # as each post that queued a request does
            await asyncio.sleep(0.001)
        looked = len(claims)
        with transaction(world.sessions) as session:
            free = queued_request(session, "bob", "+61290375679").id  # another owner's
        dispatcher.wake()
        await engine.wait_for_starts(1)

    # Once per wake-up (hundreds here) without the gap.
    assert 2 <= looked <= flood_s / FRUITLESS_CLAIM_GAP_S + 5
    assert engine.started == [request_ref(free)]


async def test_each_callback_holds_a_busy_owner_for_the_engines_setting_whatever_its_timings(
    dispatcher_world,
) -> None:
    world, _, engine = dispatcher_world
    settings = world.settings.model_copy(
        update={"engine": EngineSettings(poll_interval_s=POLL_S, owner_busy_hold_s=7)}
    )
    dispatcher = Dispatcher(world.sessions, engine, settings, limits=FlowLimits(owner_ring_s=9))
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375678")

    async with running(dispatcher):
        await engine.wait_for_starts(1)

    assert (engine.limits[0].owner_ring_s, engine.limits[0].owner_busy_hold_s) == (9, 7)


def test_a_number_put_on_the_do_not_call_list_after_it_was_queued_is_never_dialled(
    dispatcher_world,
) -> None:
    world, dispatcher, _engine = dispatcher_world
    with transaction(world.sessions) as session:
        listed = queued_request(session, "alice", "+61290375678")
        allowed = queued_request(session, "bob", "+61290375679")
        do_not_call.add(session, "+61290375678", "asked us never to call")

    claimed = dispatcher._claim(10)

    assert [work.request_id for work in claimed.works] == [allowed.id]
    with world.sessions() as session:
        refused = request_store.by_token(session, listed.token)
        assert refused.state == RequestState.FAILED.value
        assert refused.events[-1].reason == "the number is on the do-not-call list"


def test_requests_of_a_page_or_tenant_suspended_after_they_were_queued_are_never_dialled(
    dispatcher_world,
) -> None:
    world, dispatcher, _engine = dispatcher_world
    with transaction(world.sessions) as session:
        on_suspended_page = queued_request(session, "alice", "+61290375678")
        of_suspended_tenant = queued_request(session, "bob", "+61290375679")
        profiles.by_callnow_id(session, "alice").suspended_at = utcnow()
        profiles.by_callnow_id(session, "bob").extension.tenant.suspended_at = utcnow()

    assert dispatcher._claim(10).works == []

    with world.sessions() as session:
        for request, reason in (
            (on_suspended_page, "the page is suspended"),
            (of_suspended_tenant, "the tenant is suspended"),
        ):
            refused = request_store.by_token(session, request.token)
            assert refused.state == RequestState.FAILED.value
            assert refused.events[-1].reason == reason
            assert refused.reserved_minor is None
        assert session.scalars(select(CallLeg)).all() == []  # no owner leg written ahead
    # Resumed, the owner's next request is dialled as usual.
    with transaction(world.sessions) as session:
        profiles.by_callnow_id(session, "alice").suspended_at = None
        later = queued_request(session, "alice", "+61290375670")
    assert [work.request_id for work in dispatcher._claim(10).works] == [later.id]


async def test_a_call_s_end_lets_the_owner_s_next_request_start_at_once(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world  # one call per extension at a time
    with transaction(world.sessions) as session:
        first = queued_request(session, "alice", "+61290375678")
        second = queued_request(session, "alice", "+61290375679")
    claims = count_claims(monkeypatch)

    async with running(dispatcher):
        await engine.wait_for_starts(1)
        engine.end(world.sessions, first.id)
        await engine.wait_for_starts(2)

    assert engine.started == [request_ref(first.id), request_ref(second.id)]
    assert claims == [1, 2]


async def test_a_call_s_end_is_no_reason_to_claim_when_nothing_waits_for_room(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        only = queued_request(session, "alice", "+61290375678")
    claims = count_claims(monkeypatch)
    wake = watch_wake(dispatcher)

    async with running(dispatcher):
        await engine.wait_for_starts(1)
        engine.end(world.sessions, only.id)
        await until(lambda: dispatcher.running == 0, what="the end reached the dispatcher")
        await parked(wake)  # a needless claim would come before the loop parks again

    assert claims == [1]


def test_a_claim_writes_the_lease_and_the_reservation_in_one_update(dispatcher_world) -> None:
    world, dispatcher, _engine = dispatcher_world
    with transaction(world.sessions) as session:
        request = queued_request(session, "alice", "+61290375678")

    with statements_sent(world.sessions.kw["bind"]) as sent:
        claimed = dispatcher._claim(10)

    assert [work.request_id for work in claimed.works] == [request.id]
    assert sum(statement.startswith("UPDATE call_requests") for statement in sent) == 1
    with world.sessions() as session:
        stored = session.get(CallRequest, request.id)
        assert stored.claimed_by == dispatcher.engine_id
        assert stored.reserved_minor is not None and stored.reserved_minor > 0


def owner_legs_of(sessions, request_id: int) -> list[CallLeg]:
    with sessions() as session:
        return list(session.scalars(select(CallLeg).where(CallLeg.request_id == request_id)))


async def test_the_owner_leg_s_row_is_written_with_the_claim_and_handed_to_the_callback(
    dispatcher_world,
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        request = queued_request(session, "alice", "+61290375678")
        alice_internal = request.profile.extension.internal_number

    async with running(dispatcher):
        await engine.wait_for_starts(1)

    [leg] = owner_legs_of(world.sessions, request.id)
    assert (leg.role, leg.destination, leg.ended_at) == ("owner", alice_internal, None)
    assert engine.written_ahead == [LegDialling(LegRole.OWNER, alice_internal, leg.started_at)]


class CannotStart(StartsNothing):
    """The telephony cannot open the callback's channel: nothing is ever dialled."""

    async def start_callback(self, facts, limits, *, written_ahead=None):
        self.started.append(facts.request_ref)
        self.changed.set()
        raise RuntimeError("live telephony is not started")


async def test_a_callback_that_cannot_start_gives_its_leg_row_back_and_is_claimed_again(
    dispatcher_world,
) -> None:
    world, _, _ = dispatcher_world
    engine = CannotStart()
    dispatcher = dispatcher_for(world, engine)
    with transaction(world.sessions) as session:
        request = queued_request(session, "alice", "+61290375678")

    async with running(dispatcher):
        await engine.wait_for_starts(1)
        # The row is taken back in a worker thread after the failed start.
        await until(lambda: not owner_legs_of(world.sessions, request.id))

    with world.sessions() as session:
        stored = session.get(CallRequest, request.id)
        # Nothing was dialled, so nothing stays held on the owner's budget; the lease stays,
        # so a request that cannot start is not claimed again at once.
        assert stored.reserved_minor is None
        assert stored.lease_expires_at is not None
    # Once the lease has run out, a live engine claims it again rather than ending it.
    later = utcnow() + timedelta(seconds=EngineSettings().lease_s + 1)
    with transaction(world.sessions) as session:
        assert queue.interrupt_abandoned(session, later) == []
        again, _held_back = queue.claim_batch(session, "another-engine", 30, later, limit=1)
        assert [(r.id, r.state, r.claim_count) for r in again] == [(request.id, "queued", 2)]


async def test_requests_claimed_as_the_engine_stops_go_back_to_the_queue_undialled(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        request = queued_request(session, "alice", "+61290375678")
    loop = asyncio.get_running_loop()
    claiming = asyncio.Event()
    stop_asked, claim_done = threading.Event(), threading.Event()
    claim = dispatcher._claim

    def a_claim_during_which_the_engine_is_told_to_stop(limit: int):
        loop.call_soon_threadsafe(claiming.set)
        stop_asked.wait(10)
        try:
            return claim(limit)
        finally:
            claim_done.set()

    monkeypatch.setattr(dispatcher, "_claim", a_claim_during_which_the_engine_is_told_to_stop)
    await dispatcher.start()
    await claiming.wait()
    stopping = asyncio.create_task(dispatcher.stop())
    await until(lambda: dispatcher._stopping)  # stop() is under way: the claim must not be cut off
    stop_asked.set()
    await stopping
    assert await asyncio.to_thread(claim_done.wait, 10)

    assert engine.started == []
    assert owner_legs_of(world.sessions, request.id) == []
    with world.sessions() as session:
        stored = session.get(CallRequest, request.id)
        # Free at once for the next engine, not after the lease, with nothing held on the budget.
        assert (stored.state, stored.lease_expires_at, stored.claimed_by) == ("queued", None, None)
        assert stored.reserved_minor is None


async def test_a_running_engine_posts_the_charge_an_answered_leg_ended_without(
    dispatcher_world,
) -> None:
    """The charge of a leg recorded while billing could not post it (a busy database, a crash
    of the posting thread) is posted by a housekeeping round, not only at the next start."""
    world, _, engine = dispatcher_world
    settings = world.settings.model_copy(
        update={"engine": EngineSettings(poll_interval_s=POLL_S, lease_s=3)}
    )
    dispatcher = Dispatcher(world.sessions, engine, settings)
    async with running(dispatcher):
        with transaction(world.sessions) as session:
            request = queued_request(session, "alice", "+61290375678", decision="web")
            request_store.move(request, RequestState.CANCELLED, "test")
            answered = utcnow() - timedelta(seconds=70)
            leg = CallLeg(
                request_id=request.id,
                role="requester",
                destination="+61290375678",
                started_at=answered - timedelta(seconds=5),
                answered_at=answered,
                ended_at=answered + timedelta(seconds=61),
                sip_code=200,
                disposition="answered",
                billable_seconds=61,
            )
            session.add(leg)
        async with asyncio.timeout(10):
            while charges_of(world.sessions, leg.id) == 0:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # another round: the leg is not charged twice

    assert charges_of(world.sessions, leg.id) == 1


def charges_of(sessions, leg_id: int) -> int:
    with sessions() as session:
        return len(session.scalars(select(ChargeRow).where(ChargeRow.call_leg_id == leg_id)).all())


async def test_a_leg_a_dead_engine_left_up_is_hung_up_ended_and_charged_once(
    dispatcher_world,
) -> None:
    world, _, engine = dispatcher_world
    sent: list[PreparedHangup] = []

    async def end_abandoned(hangup: PreparedHangup) -> None:
        sent.append(hangup)

    bye = PreparedHangup("BYE", "BYE sip:x@192.0.2.9 SIP/2.0", "192.0.2.9", 5060, "call", "media")
    answered = utcnow() - timedelta(seconds=65)
    with transaction(world.sessions) as session:
        request = queued_request(session, "alice", "+61290375678", decision="web")
        request_store.move(request, RequestState.INTERRUPTED, "engine lost during the call")
        leg = CallLeg(
            request_id=request.id,
            role="requester",
            destination="+61290375678",
            started_at=answered - timedelta(seconds=5),
            answered_at=answered,
            sip_call_id=bye.sip_call_id,
            media_call_id=bye.media_call_id,
            hangup_method=bye.method,
            hangup_message=bye.message,
            hangup_host=bye.target_host,
            hangup_port=bye.target_port,
        )
        session.add(leg)
    settings = world.settings.model_copy(update={"engine": EngineSettings(poll_interval_s=POLL_S)})
    for _ in range(2):  # a second engine finds nothing more to do
        dispatcher = Dispatcher(world.sessions, engine, settings, end_abandoned=end_abandoned)
        async with running(dispatcher):
            pass

    assert sent == [bye]
    with world.sessions() as session:
        ended = session.get(CallLeg, leg.id)
        assert ended.disposition == "answered" and ended.answered_at == answered
        assert ended.billable_seconds >= 65
    assert charges_of(world.sessions, leg.id) == 1


async def test_a_draining_engine_claims_nothing_more_and_stops_once_its_calls_end(
    dispatcher_world,
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        first = queued_request(session, "alice", "+61290375678").id
    await dispatcher.start()
    await engine.wait_for_starts(1)
    draining = asyncio.create_task(dispatcher.drain(60))
    await until(lambda: dispatcher.draining, what="draining")
    with transaction(world.sessions) as session:
        later = queued_request(session, "bob", "+61290375679").id
    dispatcher.wake()
    await asyncio.sleep(0.5)
    assert engine.started == [request_ref(first)]  # nothing claimed once draining
    assert not draining.done() and not engine.shut_down  # the call in progress goes on

    engine.end(world.sessions, first)
    async with asyncio.timeout(10):
        await draining
    assert engine.shut_down and not dispatcher.draining
    with world.sessions() as session:
        waiting = session.get(CallRequest, later)
        assert (waiting.state, waiting.claimed_by) == ("queued", None)


async def test_a_hurried_drain_ends_a_bridged_callback_as_the_visitor_s_cancel_would(
    dispatcher_world,
) -> None:
    world, dispatcher, engine = dispatcher_world
    cancelled: list[str] = []
    start_callback = engine.start_callback

    async def bridged(*args, **kwargs):
        handle = await start_callback(*args, **kwargs)
        handle.request_state = RequestState.CONNECTED
        handle.cancel = cancelled.append
        return handle

    engine.start_callback = bridged
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375678")
    await dispatcher.start()
    await engine.wait_for_starts(1)
    hurry = asyncio.Event()
    draining = asyncio.create_task(dispatcher.drain(60, hurry))
    await until(lambda: dispatcher.draining, what="draining")
    hurry.set()
    async with asyncio.timeout(10):
        await draining
    assert cancelled == ["engine_stopping"]
    assert engine.shut_down
