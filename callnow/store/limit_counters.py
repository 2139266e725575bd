"""Rate-limit counters in the database: the embedded default, so a restart forgets nothing.

One row per counted hit of a (rule, key); a moving window is a count of the rows younger than
it. Rows go once the rule's longest window has passed (`expires_at`): each check deletes its
own keys' expired rows (on SQLite only the check that opens the transaction), and
`purge_expired` sweeps the rest a bounded batch at a time. A `take` checks and counts in one
statement: its hits go in only where every window has room.

Every statement of a check stays within its keys' part of the (rule, key, hit_at) index, so a
check costs the same whether a key holds ten hits or a flood's hundred thousand: the delete asks
only for hits older than the key's longest window (the only ones that can have expired under
the rule as configured), and a window's count stops one past the window's limit (past that,
"over the limit" is all any caller asks; limits in the tens of thousands are counted whole).

Checks and hits of one key are serialised so two requests cannot both take the last place: on
PostgreSQL by a transaction-level advisory lock per key, on SQLite by the write lock (the first
statement is a DELETE, so the transaction holds it until commit; a later check in the same
transaction already holds it and deletes nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Insert,
    ScalarSelect,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from callnow.store.models import LimitHit, UtcDateTime

PURGE_BATCH = 500
KEY_MAX_CHARS = 80


@dataclass(frozen=True)
class Window:
    amount: int
    seconds: int


@dataclass(frozen=True)
class Counter:
    rule: str
    key: str
    windows: Sequence[Window]

    @property
    def longest(self) -> timedelta:
        return timedelta(seconds=max(w.seconds for w in self.windows))


def _stored_key(key: str) -> str:
    """The key as stored: a long one (an e-mail address and a network) keeps its start and a
    hash of the whole, so two long keys never share a counter."""
    if len(key) <= KEY_MAX_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: KEY_MAX_CHARS - 33]}#{digest}"


_hits: Table = LimitHit.__table__  # type: ignore[assignment]  # Core: runs on every post


def _keys(counters: Sequence[Counter]) -> dict[str, str]:
    params = {}
    for i, counter in enumerate(counters):
        params[f"r{i}"] = counter.rule
        params[f"k{i}"] = _stored_key(counter.key)
    return params


def _is_key(i: int) -> ColumnElement[bool]:
    return and_(_hits.c.rule == bindparam(f"r{i}"), _hits.c.key == bindparam(f"k{i}"))


# Statements are built once per shape (how many counters, how many windows each) and reused:
# building them anew on every post cost more than running them.
@cache
def _drop_expired_of(counters: int) -> Delete:
    # `hit_at` bounds each key's part of the index: without it the database read every hit of
    # the key to test `expires_at`, and a flooded page's key holds thousands.
    return delete(_hits).where(
        _hits.c.expires_at <= bindparam("now"),
        or_(*(and_(_is_key(i), _hits.c.hit_at <= bindparam(f"c{i}")) for i in range(counters))),
    )


# A window whose limit is above this is counted whole: stopping early makes each row read
# dearer, and a count that large is seldom passed.
STOP_COUNT_UP_TO = 10_000
# A statement's shape: per counter, per window, whether its count stops one past the limit.
Shape = tuple[tuple[bool, ...], ...]


def _count_of(i: int, j: int, stop: bool) -> ScalarSelect[Any]:
    hits = _is_key(i), _hits.c.hit_at > bindparam(f"s{i}_{j}")
    if not stop:
        return select(func.count()).select_from(_hits).where(*hits).scalar_subquery()
    first = select(literal_column("1")).where(*hits).limit(bindparam(f"n{i}_{j}")).subquery()
    return select(func.count()).select_from(first).scalar_subquery()


@cache
def _count_windows(shape: Shape) -> Select[Any]:
    """Per counter, per window: whether its count stops past the limit."""
    return select(
        *(
            _count_of(i, j, stop)
            for i, windows in enumerate(shape)
            for j, stop in enumerate(windows)
        )
    )


@cache
def _add_if_room(shape: Shape) -> Insert:
    """One hit per counter, inserted only if every window of every counter has room: the check
    and the hits in one statement (the counts are read once, before any row goes in)."""
    hits = [
        select(
            bindparam(f"r{i}", type_=String).label("rule"),
            bindparam(f"k{i}", type_=String).label("key"),
            bindparam(f"e{i}", type_=UtcDateTime).label("expires_at"),
        )
        for i in range(len(shape))
    ]
    rows = (union_all(*hits) if len(hits) > 1 else hits[0]).subquery()
    room = [
        _count_of(i, j, stop) < bindparam(f"a{i}_{j}")
        for i, windows in enumerate(shape)
        for j, stop in enumerate(windows)
    ]
    when_room = select(
        rows.c.rule, rows.c.key, bindparam("now", type_=UtcDateTime), rows.c.expires_at
    ).where(*room)
    # The rows it inserted say whether there was room (psycopg gives no row count for an
    # INSERT from a SELECT).
    columns = ["rule", "key", "hit_at", "expires_at"]
    return insert(_hits).from_select(columns, when_room).returning(_hits.c.id)


def _lock(session: Session, counters: Sequence[Counter], now: datetime) -> None:
    """Hold every counter's key until commit, in one lock order; drop their expired hits.

    A hit expires when its rule's longest window has passed (`expires_at`), so only hits at
    least that old are looked at. (A hit written while the rule had a shorter longest window is
    left to `purge_expired` until it is that old: meanwhile the longer window counts it.)"""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        for counter in counters:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                {"k": f"{counter.rule}:{_stored_key(counter.key)}"},
            )
    elif connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        # SQLite opens a transaction only at a write, which took the write lock until commit:
        # a second check in it (the owner's limits after the source's) is serialised already,
        # and its expired hits are left to `purge_expired` (counts never read them).
        return
    cutoffs = {f"c{i}": now - counter.longest for i, counter in enumerate(counters)}
    connection.execute(_drop_expired_of(len(counters)), {"now": now, **_keys(counters), **cutoffs})


def _counts(session: Session, counters: Sequence[Counter], now: datetime) -> list[list[int]]:
    """Each counter's hits in each of its windows, read in one statement. A count may stop at
    one more than the window's limit: every caller only asks whether a count is below, at or
    over the limit, and a flooded page's counters would otherwise read every hit of the flood."""
    params, shape = _count_params(counters, now)
    row = iter(session.connection().execute(_count_windows(shape), params).one())
    return [[next(row) for _ in counter.windows] for counter in counters]


def _count_params(counters: Sequence[Counter], now: datetime) -> tuple[dict[str, object], Shape]:
    """The parameters of the windows' counts, and the statements' shape (see `_count_windows`)."""
    params: dict[str, object] = dict(_keys(counters))
    for i, counter in enumerate(counters):
        for j, window in enumerate(counter.windows):
            params[f"s{i}_{j}"] = now - timedelta(seconds=window.seconds)
            if window.amount <= STOP_COUNT_UP_TO:
                params[f"n{i}_{j}"] = window.amount + 1
    shape = tuple(
        tuple(window.amount <= STOP_COUNT_UP_TO for window in counter.windows)
        for counter in counters
    )
    return params, shape


def _add(session: Session, counters: Sequence[Counter], now: datetime) -> None:
    session.connection().execute(
        insert(_hits),
        [
            {
                "rule": counter.rule,
                "key": _stored_key(counter.key),
                "hit_at": now,
                "expires_at": now + counter.longest,
            }
            for counter in counters
        ],
    )


def _in_lock_order(counters: Sequence[Counter]) -> list[Counter]:
    return sorted(counters, key=lambda c: (c.rule, c.key))  # one lock order: no deadlock


def take(session: Session, counters: Sequence[Counter], now: datetime) -> bool:
    """Count one hit on every counter only if each of their windows still has room."""
    if not counters:
        return True
    ordered = _in_lock_order(counters)
    _lock(session, ordered, now)
    params, shape = _count_params(ordered, now)
    for i, counter in enumerate(ordered):
        params[f"e{i}"] = now + counter.longest
        for j, window in enumerate(counter.windows):
            params[f"a{i}_{j}"] = window.amount
    inserted = session.connection().execute(_add_if_room(shape), {"now": now, **params})
    return bool(inserted.all())


def take_then_hit(
    session: Session, take: Sequence[Counter], hit: Sequence[Counter], now: datetime
) -> list[bool] | None:
    """`take` the first counters and, only if they had room, `hit_each` of the others, in one
    round of statements: None when `take` refused (nothing counted)."""
    ordered = _in_lock_order([*take, *hit])
    _lock(session, ordered, now)
    counted = dict(zip(map(id, ordered), _counts(session, ordered, now), strict=True))
    for counter in take:
        if any(n >= w.amount for n, w in zip(counted[id(counter)], counter.windows, strict=True)):
            return None
    _add(session, ordered, now)
    # Under the lock nothing else counted meanwhile: after this hit each count is one more.
    return [
        all(n + 1 <= w.amount for n, w in zip(counted[id(c)], c.windows, strict=True)) for c in hit
    ]


def hit_each(session: Session, counters: Sequence[Counter], now: datetime) -> list[bool]:
    """Count one hit on every counter whatever the windows say; for each counter (in the
    order given), False when it went over any of its windows."""
    if not counters:
        return []
    ordered = _in_lock_order(counters)
    _lock(session, ordered, now)
    _add(session, ordered, now)
    counted = dict(zip(map(id, ordered), _counts(session, ordered, now), strict=True))
    return [
        all(count <= window.amount for count, window in zip(counted[id(c)], c.windows, strict=True))
        for c in counters
    ]


def hit(session: Session, counter: Counter, now: datetime) -> bool:
    """Count one hit whatever the windows say; False when it went over any of them."""
    return hit_each(session, [counter], now)[0]


def has_room(session: Session, counter: Counter, now: datetime) -> bool:
    """True while every window has room for one more hit (counts nothing)."""
    (counts,) = _counts(session, [counter], now)
    return all(count < window.amount for count, window in zip(counts, counter.windows, strict=True))


def purge_expired(session: Session, now: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` hits whose windows have all passed; returns how many went."""
    oldest = (
        select(LimitHit.id).where(LimitHit.expires_at <= now).order_by(LimitHit.id).limit(limit)
    )
    result = session.execute(
        delete(LimitHit)
        .where(LimitHit.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # a DELETE gives a CursorResult


def count_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(LimitHit)) or 0
