"""Rate-limit counters in the database: the embedded default, so a restart forgets nothing.

Each window of a counter keeps its hits in time slices a thirtieth of the window long: a row per
(rule, key, window, slice) holds how many hits fell in that slice. A window's count is the sum
of the slices it touches, about 31 rows, so a check costs the same whether a key saw ten hits
or a flood's hundred thousand (a row per hit made every check read them all again).

The oldest slice counted lies partly before the window and is counted whole: a count can only
err high. No window ever lets more than its limit through; a source that was refused may wait up
to a thirtieth of the window longer than an exact moving window would make it wait. Slices past
their window are no longer read, and `purge_expired` deletes them a bounded batch at a time.

A hit adds one to the current slice of each window of its counter (an upsert). `take` checks and
counts in one statement: its hits go in only where every window has room. `take_then_hit`'s other
hits go in with the same statement, on the same condition.

Checks and hits of one key are serialised so two requests cannot both take the last place: on
PostgreSQL by a transaction-level advisory lock per key; on SQLite by the write lock, which the
first statement of every check that counts takes (it is a write) and the transaction holds until
commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    ScalarSelect,
    Select,
    String,
    Table,
    TextClause,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callnow.store.models import LimitCount, UtcDateTime
from callnow.store.prepared import Prepared

PURGE_BATCH = 500
KEY_MAX_CHARS = 80
SLICES_PER_WINDOW = 30


@dataclass(frozen=True)
class Window:
    amount: int
    seconds: int


@dataclass(frozen=True)
class Counter:
    rule: str
    key: str
    windows: Sequence[Window]

    def lengths(self) -> list[int]:
        """The window lengths whose slices a hit adds to (two windows of one length share)."""
        return sorted({w.seconds for w in self.windows})


def _stored_key(key: str) -> str:
    """The key as stored: a long one (an e-mail address and a network) keeps its start and a
    hash of the whole, so two long keys never share a counter."""
    if len(key) <= KEY_MAX_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: KEY_MAX_CHARS - 33]}#{digest}"


def _slice_s(window_s: int) -> int:
    return max(1, window_s // SLICES_PER_WINDOW)


def _slot(window_s: int, at: datetime) -> int:
    return int(at.timestamp() // _slice_s(window_s))


_counts_table: Table = LimitCount.__table__  # type: ignore[assignment]  # Core: every post
_c = _counts_table.c

# A statement's shape: per counter, how many windows it has and how many distinct lengths.
Shape = tuple[tuple[int, int], ...]


def _shape(counters: Sequence[Counter]) -> Shape:
    return tuple((len(c.windows), len(c.lengths())) for c in counters)


def _params(counters: Sequence[Counter], now: datetime) -> dict[str, object]:
    """Every statement's parameters: each counter's rule and key (`r`, `k`); per window, its
    length, first slice and limit (`w`, `f`, `a`); per length, the slice a hit goes to and
    when that slice expires (`l`, `s`, `e`)."""
    params: dict[str, object] = {}
    for i, counter in enumerate(counters):
        params[f"r{i}"] = counter.rule
        params[f"k{i}"] = _stored_key(counter.key)
        for j, window in enumerate(counter.windows):
            params[f"w{i}_{j}"] = window.seconds
            # The slice holding the window's start: counted whole (see the module's doc).
            first = datetime.fromtimestamp(now.timestamp() - window.seconds, UTC)
            params[f"f{i}_{j}"] = _slot(window.seconds, first)
            params[f"a{i}_{j}"] = window.amount
        for j, length in enumerate(counter.lengths()):
            slot = _slot(length, now)
            params[f"l{i}_{j}"] = length
            params[f"s{i}_{j}"] = slot
            ends = (slot + 1) * _slice_s(length) + length
            params[f"e{i}_{j}"] = datetime.fromtimestamp(ends, UTC)
    return params


def _count_of(i: int, j: int) -> ScalarSelect[Any]:
    in_window = (
        _c.rule == bindparam(f"r{i}"),
        _c.key == bindparam(f"k{i}"),
        _c.window_s == bindparam(f"w{i}_{j}"),
        _c.slot >= bindparam(f"f{i}_{j}"),
    )
    return select(func.coalesce(func.sum(_c.hits), 0)).where(*in_window).scalar_subquery()


def _windows(shape: Shape) -> list[tuple[int, int]]:
    return [(i, j) for i, (windows, _) in enumerate(shape) for j in range(windows)]


# Statements are built once per shape and reused: building them anew on every post cost more
# than running them.
@cache
def _count_windows(shape: Shape, first: int = 0) -> Prepared:
    """The counts of counters `first`, `first + 1` … of the parameters (`_params`)."""
    return Prepared(select(*(_count_of(first + i, j) for i, j in _windows(shape))))


def _new_hits(shape: Shape) -> Select[Any]:
    """One row per counter and window length: the slice a hit goes to."""
    rows = [
        select(
            bindparam(f"r{i}", type_=String).label("rule"),
            bindparam(f"k{i}", type_=String).label("key"),
            bindparam(f"l{i}_{j}", type_=Integer).label("window_s"),
            bindparam(f"s{i}_{j}", type_=BigInteger).label("slot"),
            bindparam(f"e{i}_{j}", type_=UtcDateTime).label("expires_at"),
        )
        for i, (_, lengths) in enumerate(shape)
        for j in range(lengths)
    ]
    new = (union_all(*rows) if len(rows) > 1 else rows[0]).subquery()
    one = literal_column("1", Integer)
    return select(new.c.rule, new.c.key, new.c.window_s, new.c.slot, one, new.c.expires_at)


@cache
def _upsert(dialect: str, shape: Shape, *, checked: int) -> Prepared:
    """A hit on every counter's current slices, only if every window of the first `checked`
    counters has room (the check and the hits in one statement: the counts are read before any
    row goes in). The rows it wrote say whether there was room (psycopg gives no row count for
    an INSERT from a SELECT)."""
    if checked:
        rows = _new_hits(shape).where(
            *(_count_of(i, j) < bindparam(f"a{i}_{j}") for i, j in _windows(shape[:checked]))
        )
    else:  # SQLite needs a WHERE to tell the SELECT's end from the ON CONFLICT clause
        rows = _new_hits(shape).where(true())
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = ["rule", "key", "window_s", "slot", "hits", "expires_at"]
    upsert = (
        insert(_counts_table)
        .from_select(columns, rows)
        .on_conflict_do_update(
            index_elements=[_c.rule, _c.key, _c.window_s, _c.slot],
            set_={"hits": _c.hits + 1},
        )
    )
    return Prepared(upsert.returning(_c.hits))


@cache
def _lock_keys(count: int) -> TextClause:
    # One round trip for all keys, not one each. PostgreSQL evaluates a select list from left to
    # right, so the locks are taken in the order given, as one statement per key took them.
    locks = ", ".join(f"pg_advisory_xact_lock(hashtext(:k{i}))" for i in range(count))
    return text(f"SELECT {locks}")


def _lock(session: Session, counters: Sequence[Counter]) -> None:
    """Hold every counter's key until commit, in one lock order (PostgreSQL; on SQLite the
    first statement that counts is a write, which takes the write lock)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql" and counters:
        keys = {f"k{i}": f"{c.rule}:{_stored_key(c.key)}" for i, c in enumerate(counters)}
        connection.execute(_lock_keys(len(counters)), keys)


def _counts(
    session: Session,
    counters: Sequence[Counter],
    now: datetime,
    given: tuple[dict[str, object], int] | None = None,
) -> list[list[int]]:
    """Each counter's hits in each of its windows, read in one statement. `given`: parameters
    already worked out (`_params`) for a list of counters that holds these from a position on."""
    params, first = given or (_params(counters, now), 0)
    statement = _count_windows(_shape(counters), first)
    row = iter(statement.run(session.connection(), params).one())
    return [[next(row) for _ in counter.windows] for counter in counters]


def _add(
    session: Session, counters: Sequence[Counter], params: dict[str, object], *, checked: int
) -> bool:
    """Count a hit on each of `counters` (`params`: theirs) if the first `checked` of them
    have room."""
    connection = session.connection()
    statement = _upsert(connection.dialect.name, _shape(counters), checked=checked)
    return bool(statement.run(connection, params).all())


def _in_lock_order(counters: Sequence[Counter]) -> list[Counter]:
    return sorted(counters, key=lambda c: (c.rule, c.key))  # one lock order: no deadlock


def take(session: Session, counters: Sequence[Counter], now: datetime) -> bool:
    """Count one hit on every counter only if each of their windows still has room."""
    if not counters:
        return True
    ordered = _in_lock_order(counters)
    _lock(session, ordered)
    return _add(session, ordered, _params(ordered, now), checked=len(ordered))


def take_then_hit(
    session: Session, take: Sequence[Counter], hit: Sequence[Counter], now: datetime
) -> list[bool] | None:
    """`take` the first counters and, only if they had room, `hit_each` of the others: None
    when `take` refused (nothing counted).

    The take and the hits go in as one statement, conditioned on the take's room, not as two:
    every public form post passes here, and each statement costs it more to run than to do."""
    _lock(session, _in_lock_order([*take, *hit]))
    if not take:
        return _hit_counted(session, hit, now)
    counters = [*_in_lock_order(take), *hit]
    params = _params(counters, now)  # the hits' counts are read with the same parameters
    if not _add(session, counters, params, checked=len(take)):
        return None
    return _within_limits(hit, _counts(session, hit, now, (params, len(take)))) if hit else []


def hit_each(session: Session, counters: Sequence[Counter], now: datetime) -> list[bool]:
    """Count one hit on every counter whatever the windows say; for each counter (in the
    order given), False when it went over any of its windows."""
    if not counters:
        return []
    _lock(session, _in_lock_order(counters))
    return _hit_counted(session, counters, now)


def _hit_counted(session: Session, counters: Sequence[Counter], now: datetime) -> list[bool]:
    if not counters:
        return []
    params = _params(counters, now)
    _add(session, counters, params, checked=0)
    return _within_limits(counters, _counts(session, counters, now, (params, 0)))


def _within_limits(counters: Sequence[Counter], counted: list[list[int]]) -> list[bool]:
    """For each counter, False when its hit (counted already) went over any of its windows."""
    return [
        all(n <= w.amount for n, w in zip(counts, c.windows, strict=True))
        for counts, c in zip(counted, counters, strict=True)
    ]


def hit(session: Session, counter: Counter, now: datetime) -> bool:
    """Count one hit whatever the windows say; False when it went over any of them."""
    return hit_each(session, [counter], now)[0]


def has_room(session: Session, counter: Counter, now: datetime) -> bool:
    """True while every window has room for one more hit (counts nothing)."""
    (counts,) = _counts(session, [counter], now)
    return all(count < window.amount for count, window in zip(counts, counter.windows, strict=True))


def purge_expired(session: Session, now: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` slices their windows have passed; returns how many went."""
    key = tuple_(_c.rule, _c.key, _c.window_s, _c.slot)
    oldest = select(_c.rule, _c.key, _c.window_s, _c.slot).where(_c.expires_at <= now).limit(limit)
    result = session.connection().execute(delete(_counts_table).where(key.in_(oldest)))
    return result.rowcount or 0


def count_hits(session: Session) -> int:
    """Every hit still held, all counters and windows together."""
    return session.scalar(select(func.coalesce(func.sum(_c.hits), 0))) or 0
