"""Public work that arrives together shares one transaction, answered only once it committed.

On a real database (SQLite and PostgreSQL): the work writes rows of a table of its own, and
each answer is checked against a separate connection the moment it arrives.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from callnow.store.db import after_commit, make_engine, make_session_factory
from callnow.web.shared_commits import SharedCommits

TABLE = "shared_commit_probe"


@pytest.fixture
def database(db_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = make_engine(db_url, connections=4)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        connection.execute(text(f"CREATE TABLE {TABLE} (n INTEGER PRIMARY KEY)"))
    yield engine, make_session_factory(engine)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {TABLE}"))
    engine.dispose()


def _stored(engine: Engine, n: int) -> bool:
    with engine.connect() as connection:
        found = connection.execute(text(f"SELECT n FROM {TABLE} WHERE n = :n"), {"n": n})
        return found.first() is not None


def _commits(sessions: sessionmaker[Session]) -> list[int]:
    commits: list[int] = []
    event.listen(sessions, "after_commit", lambda session: commits.append(1))
    return commits


def _insert(n: int, started: threading.Event | None = None, go: threading.Event | None = None):
    def work(session: Session) -> int:
        session.execute(text(f"INSERT INTO {TABLE} (n) VALUES (:n)"), {"n": n})
        if started is not None and go is not None:
            started.set()
            assert go.wait(10)
        return n

    return work


async def _hold_first(commits: SharedCommits) -> tuple[Any, threading.Event]:
    """Start one request and keep it running, so the next ones wait for their turn."""
    started, go = threading.Event(), threading.Event()
    first = asyncio.ensure_future(commits.run(_insert(0, started, go)))
    assert await asyncio.to_thread(started.wait, 10)
    return first, go


async def test_requests_that_wait_together_share_one_commit_and_answer_after_it(database):
    engine, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=16)
    committed = _commits(sessions)
    first, go = await _hold_first(commits)

    async def ask(n: int) -> bool:
        assert await commits.run(_insert(n)) == n
        return _stored(engine, n)  # read the moment the answer arrives

    waiting = [asyncio.ensure_future(ask(n)) for n in range(1, 6)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting)
    go.set()
    assert await first == 0
    assert await asyncio.gather(*waiting) == [True] * 5
    assert len(committed) == 2  # the first alone, then the five waiting together
    await commits.drain()


async def test_no_more_than_largest_share_a_transaction(database):
    engine, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=2)
    committed = _commits(sessions)
    first, go = await _hold_first(commits)
    waiting = [asyncio.ensure_future(commits.run(_insert(n))) for n in range(1, 6)]
    await asyncio.sleep(0.05)
    go.set()
    await first
    assert await asyncio.gather(*waiting) == [1, 2, 3, 4, 5]
    assert len(committed) == 1 + 3  # 2, 2 and 1
    assert all(_stored(engine, n) for n in range(6))


async def test_a_failing_request_fails_alone_and_the_others_are_stored(database):
    engine, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=16)
    first, go = await _hold_first(commits)

    def fails(session: Session) -> int:
        session.execute(text(f"INSERT INTO {TABLE} (n) VALUES (99)"))
        raise ValueError("this request's own error")

    before = asyncio.ensure_future(commits.run(_insert(1)))
    failing = asyncio.ensure_future(commits.run(fails))
    after = asyncio.ensure_future(commits.run(_insert(2)))
    await asyncio.sleep(0.05)
    go.set()
    await first
    assert await before == 1
    assert await after == 2
    with pytest.raises(ValueError, match="own error"):
        await failing
    assert _stored(engine, 1) and _stored(engine, 2)
    assert not _stored(engine, 99)


async def test_a_request_whose_client_left_before_its_turn_is_not_run(database):
    engine, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=16)
    first, go = await _hold_first(commits)
    left = asyncio.ensure_future(commits.run(_insert(1)))
    stays = asyncio.ensure_future(commits.run(_insert(2)))
    await asyncio.sleep(0.05)
    left.cancel()
    go.set()
    await first
    assert await stays == 2
    assert not _stored(engine, 1)


async def test_what_runs_after_the_commit_keeps_its_own_requests_log_fields(database):
    _, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=16)
    first, go = await _hold_first(commits)
    seen: dict[int, Any] = {}

    async def ask(n: int) -> None:
        structlog.contextvars.bind_contextvars(visit=n)

        def work(session: Session) -> None:
            _insert(n)(session)
            after_commit(session, lambda: seen.update({n: structlog.contextvars.get_contextvars()}))

        await commits.run(work)

    waiting = [asyncio.ensure_future(ask(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0.05)
    go.set()
    await first
    await asyncio.gather(*waiting)
    assert {n: fields.get("visit") for n, fields in seen.items()} == {1: 1, 2: 2, 3: 3}


async def test_work_queued_as_the_last_runner_stops_gets_a_runner_of_its_own(database):
    """The answer wakes its waiter before the runner that set it has stopped: work the waiter
    queues at once must not wait for a runner that is about to stop."""
    engine, sessions = database
    commits = SharedCommits(sessions, runners=1, largest=16)

    async def one_after_the_other() -> list[int]:
        return [await commits.run(_insert(n)) for n in range(1, 4)]

    assert await asyncio.wait_for(one_after_the_other(), 10) == [1, 2, 3]
    assert all(_stored(engine, n) for n in (1, 2, 3))
    await commits.drain()
