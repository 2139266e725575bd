"""The dispatcher's claim loop, on SQLite and PostgreSQL, with an engine that dials nothing.

It claims when woken and not otherwise: a request queued while a claim is running is claimed
at once, not at the next poll, and a claim that emptied the queue is not followed by another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from callnow.bootstrap import seed_default_deck
from callnow.config import EngineSettings
from callnow.domain.flow import FlowLimits, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.dispatcher import Dispatcher
from callnow.store import do_not_call, queue
from callnow.store import requests as request_store
from callnow.store.db import transaction
from callnow.store.models import CallRequest, utcnow
from callnow.store.recorder import request_ref
from tests.support.statements import statements_sent
from tests.support.world import queued_request

# Far longer than any test waits: a request claimed in time was claimed because of a wake-up.
POLL_S = 30.0


class StartsNothing:
    """A CallbackEngine that notes which callbacks it was asked to start and runs none."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.outcomes: dict[str, asyncio.Future] = {}
        self.changed = asyncio.Event()

    async def start_callback(self, facts: RequestFacts, limits: FlowLimits) -> SimpleNamespace:
        self.started.append(facts.request_ref)
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
        return None

    async def wait_for_starts(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.started) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def dispatcher_world(world):
    with transaction(world.sessions) as session:
        seed_default_deck(session)
    settings = world.settings.model_copy(update={"engine": EngineSettings(poll_interval_s=POLL_S)})
    engine = StartsNothing()
    return world, Dispatcher(world.sessions, engine, settings), engine


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


async def test_a_claim_that_emptied_the_queue_is_not_followed_by_another(
    dispatcher_world, monkeypatch
) -> None:
    world, dispatcher, engine = dispatcher_world
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375678")
        queued_request(session, "bob", "+61290375679")
    claims = count_claims(monkeypatch)

    async with running(dispatcher):
        await engine.wait_for_starts(2)
        await asyncio.sleep(0.3)  # room for a needless second claim to show up

    assert claims == [1]  # both in one batch, and the batch was not full: nothing more to look for


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

    async with running(dispatcher):
        await engine.wait_for_starts(1)
        engine.end(world.sessions, only.id)
        await asyncio.sleep(0.3)  # room for a needless claim to show up

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
