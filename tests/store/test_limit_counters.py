"""The database's limit counters, on SQLite and PostgreSQL: exact at and past every limit, and
each check clearing its own keys' expired hits (on SQLite, the check that opens the transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from callnow.store import limit_counters
from callnow.store.db import make_session_factory, transaction
from callnow.store.limit_counters import Counter, Window
from callnow.store.models import LimitHit

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _second(n: int) -> datetime:
    return START + timedelta(seconds=n)


def test_a_counter_far_past_its_limit_stays_over_it(sessions) -> None:
    """A count may stop one past the limit; every answer past it is still "over"."""
    page = Counter("captcha_auto_on", "7", [Window(3, 600)])
    with transaction(sessions) as session:
        hits = [limit_counters.hit(session, page, _second(i)) for i in range(10)]
        assert hits == [True, True, True] + [False] * 7
        assert not limit_counters.has_room(session, page, _second(10))
        assert not limit_counters.take(session, [page], _second(11))


def test_take_then_hit_says_when_each_hit_counter_went_over(sessions) -> None:
    source = Counter("per_source", "203.0.113.9", [Window(100, 60)])
    busy = Counter("captcha_auto_on", "7", [Window(2, 600)])
    spike = Counter("spike_captcha", "7", [Window(4, 600)])
    with transaction(sessions) as session:
        counted = [
            limit_counters.take_then_hit(session, [source], [busy, spike], _second(i))
            for i in range(6)
        ]
    assert (
        counted == [[True, True], [True, True], [False, True], [False, True]] + [[False, False]] * 2
    )


def test_a_check_clears_its_own_keys_expired_hits_and_no_others(sessions) -> None:
    mine = Counter("per_source", "203.0.113.9", [Window(5, 60), Window(50, 3600)])
    other = Counter("per_source", "203.0.113.10", [Window(5, 60), Window(50, 3600)])
    hour = timedelta(hours=1)
    with transaction(sessions) as session:
        limit_counters.hit(session, mine, START)
        limit_counters.hit(session, other, START)
        limit_counters.hit(session, mine, START + hour / 2)
    with transaction(sessions) as session:
        # The first hit's longest window ends exactly now: it has expired; the second has not.
        assert limit_counters.take(session, [mine], START + hour)
        left = session.execute(select(LimitHit.key, LimitHit.hit_at).order_by(LimitHit.id)).all()
    assert [(key, at.astimezone(UTC)) for key, at in left] == [
        (other.key, START),  # another key's: left for the sweep
        (mine.key, START + hour / 2),
        (mine.key, START + hour),
    ]


def test_a_check_takes_nothing_when_any_counter_is_full(sessions) -> None:
    """`take` is all or nothing: one full counter refuses the others' hits too."""
    source = Counter("per_source", "203.0.113.9", [Window(5, 60), Window(50, 3600)])
    number = Counter("per_number", "+61291234567", [Window(2, 3600)])
    with transaction(sessions) as session:
        assert limit_counters.take(session, [source, number], START)
        assert limit_counters.take(session, [source, number], _second(1))
        assert not limit_counters.take(session, [source, number], _second(2))
        counted = limit_counters._counts(session, [source, number], _second(3))
    assert counted == [[2, 2], [2]]
