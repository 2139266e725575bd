"""The status board: every request a visitor watches is read in one query per poll, and only
the streams whose request changed are woken."""

from __future__ import annotations

import asyncio
import contextlib

from callnow.domain.request_state import RequestState
from callnow.store import requests as request_store
from callnow.store.db import transaction
from callnow.store.models import CallRequest
from callnow.web.status_board import Seen, StatusBoard
from tests.support.statements import statements_sent
from tests.support.waiting import until
from tests.support.world import queued_request

POLL_S = 0.02
QUEUED = Seen("queued", "default")


def queue_requests(world, count: int) -> list[int]:
    with transaction(world.sessions) as session:
        requests = [queued_request(session, "alice", f"+6129037{n:04d}") for n in range(count)]
        session.flush()
        return [request.id for request in requests]


def move(world, request_id: int, state: RequestState) -> None:
    with transaction(world.sessions) as session:
        request_store.move(session.get(CallRequest, request_id), state, "test")


def reads_of_requests(sent: list[str]) -> list[str]:
    return [sql for sql in sent if sql.lstrip().upper().startswith("SELECT")]


async def test_many_watched_requests_cost_one_query_per_poll(world) -> None:
    board = StatusBoard(world.sessions)
    request_ids = queue_requests(world, 30)
    async with contextlib.AsyncExitStack() as stack:
        for request_id in request_ids:
            await stack.enter_async_context(board.watching(request_id, QUEUED, poll_s=POLL_S))
        with statements_sent(world.sessions.kw["bind"]) as sent:
            await until(lambda: reads_of_requests(sent))
            await asyncio.sleep(POLL_S * 5)
    reads = reads_of_requests(sent)
    # A few polls of all 30 requests each; a read per stream would be 30 in every poll.
    assert 1 <= len(reads) < len(request_ids), reads
    assert all(" IN " in sql.upper() for sql in reads)
    await board.close()


async def test_each_stream_of_a_changed_request_wakes_and_the_others_do_not(world) -> None:
    board = StatusBoard(world.sessions)
    ringing, waiting = queue_requests(world, 2)
    async with (
        board.watching(ringing, QUEUED, poll_s=POLL_S) as first,
        board.watching(ringing, QUEUED, poll_s=POLL_S) as second,
        board.watching(waiting, QUEUED, poll_s=POLL_S) as other,
    ):
        # Each stream starts from what its page read.
        assert [await w.next(1.0) for w in (first, second, other)] == [QUEUED] * 3
        move(world, ringing, RequestState.CALLING_OWNER)
        calling = Seen("calling_owner", "default")
        assert await first.next(5.0) == calling
        assert await second.next(5.0) == calling
        # Nothing new for the other request: it waits out its time and says the same.
        async with asyncio.timeout(5.0):
            assert await other.next(POLL_S * 5) == QUEUED
        # A change is given once; the next call waits for another.
        async with asyncio.timeout(5.0):
            assert await first.next(POLL_S * 5) == calling
    await board.close()


async def test_a_stream_that_starts_later_joins_the_same_reading(world) -> None:
    board = StatusBoard(world.sessions)
    (request_id,) = queue_requests(world, 1)
    async with board.watching(request_id, QUEUED, poll_s=POLL_S) as early:
        move(world, request_id, RequestState.CALLING_OWNER)
        assert await early.next(0) == QUEUED
        assert await early.next(5.0) == Seen("calling_owner", "default")
        async with board.watching(request_id, Seen("calling_owner", "default"), poll_s=1.0) as late:
            assert board.watched == 1
            assert await late.next(0) == Seen("calling_owner", "default")
    await board.close()


async def test_when_nobody_watches_nothing_is_read(world) -> None:
    board = StatusBoard(world.sessions)
    (request_id,) = queue_requests(world, 1)
    async with board.watching(request_id, QUEUED, poll_s=POLL_S):
        await asyncio.sleep(POLL_S * 3)
    assert board.watched == 0
    await until(lambda: board._poller.done(), what="the poller noticed and ended")
    with statements_sent(world.sessions.kw["bind"]) as sent:
        await asyncio.sleep(POLL_S * 10)
    assert reads_of_requests(sent) == []
    await board.close()
