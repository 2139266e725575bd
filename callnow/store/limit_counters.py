"""Rate-limit counters in the database: the embedded default, so a restart forgets nothing.

One row per counted hit of a (rule, key); a moving window is a count of the rows younger than
it. Rows go once the rule's longest window has passed (`expires_at`): each check deletes its
own key's expired rows, and `purge_expired` sweeps the rest a bounded batch at a time.

Checks and hits of one key are serialised so two requests cannot both take the last place: on
PostgreSQL by a transaction-level advisory lock per key, on SQLite by the write lock (the first
statement is a DELETE, so the transaction holds it until commit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from callnow.store.models import LimitHit

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


def _lock(session: Session, counter: Counter, now: datetime) -> None:
    key = _stored_key(counter.key)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{counter.rule}:{key}"}
        )
    session.execute(
        delete(LimitHit)
        .where(LimitHit.rule == counter.rule, LimitHit.key == key, LimitHit.expires_at <= now)
        .execution_options(synchronize_session=False)
    )


def _count(session: Session, counter: Counter, window: Window, now: datetime) -> int:
    since = now - timedelta(seconds=window.seconds)
    return (
        session.scalar(
            select(func.count())
            .select_from(LimitHit)
            .where(
                LimitHit.rule == counter.rule,
                LimitHit.key == _stored_key(counter.key),
                LimitHit.hit_at > since,
            )
        )
        or 0
    )


def _add(session: Session, counter: Counter, now: datetime) -> None:
    session.execute(
        insert(LimitHit).values(
            rule=counter.rule,
            key=_stored_key(counter.key),
            hit_at=now,
            expires_at=now + counter.longest,
        )
    )


def take(session: Session, counters: Sequence[Counter], now: datetime) -> bool:
    """Count one hit on every counter only if each of their windows still has room."""
    ordered = sorted(counters, key=lambda c: (c.rule, c.key))  # one lock order: no deadlock
    for counter in ordered:
        _lock(session, counter, now)
    for counter in ordered:
        for window in counter.windows:
            if _count(session, counter, window, now) >= window.amount:
                return False
    for counter in ordered:
        _add(session, counter, now)
    return True


def hit(session: Session, counter: Counter, now: datetime) -> bool:
    """Count one hit whatever the windows say; False when it went over any of them."""
    _lock(session, counter, now)
    _add(session, counter, now)
    return all(_count(session, counter, w, now) <= w.amount for w in counter.windows)


def has_room(session: Session, counter: Counter, now: datetime) -> bool:
    """True while every window has room for one more hit (counts nothing)."""
    return all(_count(session, counter, w, now) < w.amount for w in counter.windows)


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
