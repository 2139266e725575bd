"""The database's limit counters, on SQLite and PostgreSQL: exact at and past every limit, a
count that errs only high at a window's start, and a flood held in a bounded number of rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from callnow.store import limit_counters
from callnow.store.db import make_session_factory, transaction
from callnow.store.limit_counters import Counter, Window
from callnow.store.models import LimitCount

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


def test_the_oldest_slice_counts_whole_so_a_window_frees_at_most_a_slice_late(sessions) -> None:
    """A minute is counted in slices of 2 s: a hit leaves the count within 2 s after the exact
    moving window would have let it go, and never before."""
    minute = Counter("per_source", "203.0.113.9", [Window(1, 60)])
    with transaction(sessions) as session:
        assert limit_counters.take(session, [minute], _second(1))
        assert not limit_counters.has_room(session, minute, _second(60))
        # Exactly, the window (1 s, 61 s] no longer holds the hit; its slice [0 s, 2 s) counts.
        assert not limit_counters.has_room(session, minute, _second(61))
        assert limit_counters.has_room(session, minute, _second(62))
        assert limit_counters.take(session, [minute], _second(62))


def test_a_flood_is_held_in_a_bounded_number_of_rows_and_the_sweep_clears_them(sessions) -> None:
    page = Counter("captcha_auto_on", "7", [Window(1_000_000, 60), Window(1_000_000, 3600)])
    other = Counter("per_source", "203.0.113.10", [Window(5, 60)])
    with transaction(sessions) as session:
        limit_counters.hit(session, other, START)
        for tenth in range(1_000):  # a hit every tenth of a second for 100 s
            limit_counters.hit(session, page, START + timedelta(seconds=tenth / 10))
        # The minute (40.5 s, 100.5 s] holds 595 hits; its oldest slice, 40-42 s, counts whole.
        end = START + timedelta(seconds=100.5)
        assert limit_counters._counts(session, [page], end) == [[600, 1_000]]
        rows = session.scalar(select(func.count()).select_from(LimitCount))
        assert rows == 1 + 50 + 1  # the other key's slice; the page's 50 of 2 s and 1 of 2 min
        # A minute's slice goes a minute after its end: at 100 s, those that ended by 40 s.
        assert limit_counters.purge_expired(session, START + timedelta(seconds=100)) == 1 + 20
        assert limit_counters.purge_expired(session, end + timedelta(hours=2)) == 30 + 1
        assert limit_counters.count_hits(session) == 0


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


def test_concurrent_checks_never_both_take_the_last_place(sessions) -> None:
    """Eight threads race for five places on one key (and the page's with it, locked together):
    exactly five get one, whatever the interleaving."""
    source = Counter("per_source", "203.0.113.9", [Window(5, 60)])
    page = Counter("per_profile", "7", [Window(1_000, 60)])
    start_together = threading.Barrier(8)

    def attempts(thread: int) -> int:
        start_together.wait()
        taken = 0
        for attempt in range(4):
            with transaction(sessions) as session:
                counters = [page, source] if thread % 2 else [source, page]
                taken += limit_counters.take(session, counters, _second(attempt))
        return taken

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(attempts, range(8))) == 5
    with transaction(sessions) as session:
        assert limit_counters._counts(session, [source, page], _second(4)) == [[5], [5]]


def test_take_then_hit_counts_the_hits_only_with_the_take(sessions) -> None:
    """The take and the hits go in as one statement: the take's own row must not turn the
    condition for the hits (the counts are read before any row goes in), and a refused take
    counts no hit."""
    source = Counter("per_source", "203.0.113.9", [Window(1, 60)])
    busy = Counter("captcha_auto_on", "7", [Window(2, 600)])
    with transaction(sessions) as session:
        assert limit_counters.take_then_hit(session, [source], [busy], START) == [True]
        assert limit_counters.take_then_hit(session, [source], [busy], _second(1)) is None
        assert limit_counters.take_then_hit(session, [source], [], _second(2)) is None
        assert limit_counters._counts(session, [source, busy], _second(3)) == [[1], [1]]
        assert limit_counters.take_then_hit(session, [], [busy], _second(4)) == [True]
        assert limit_counters.take_then_hit(session, [], [busy], _second(5)) == [False]
