"""Spent CAPTCHA challenges: the only CAPTCHA rows there are, and only until they expire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callnow.store.models import SpentCaptcha

# Expired rows one spend deletes at most, so a backlog never makes one answer slow.
PURGE_BATCH = 100


def spend(session: Session, nonce: str, now: datetime) -> bool:
    """Record the nonce as spent; False when it already was (a replay, or the losing one of two
    concurrent answers). The savepoint keeps the caller's transaction usable either way."""
    try:
        with session.begin_nested():
            session.add(SpentCaptcha(nonce=nonce, spent_at=now))
    except IntegrityError:
        return False
    return True


def is_spent(session: Session, nonce: str) -> bool:
    return session.get(SpentCaptcha, nonce) is not None


def purge_expired(session: Session, before: datetime, limit: int = PURGE_BATCH) -> int:
    """Forget spent nonces older than `before`: their signatures have expired, so no replay can
    get past the age check any more. Bounded; returns how many rows went."""
    oldest = (
        select(SpentCaptcha.nonce)
        .where(SpentCaptcha.spent_at < before)
        .order_by(SpentCaptcha.spent_at)
        .limit(limit)
    )
    result = session.execute(
        delete(SpentCaptcha)
        .where(SpentCaptcha.nonce.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # a DELETE gives a CursorResult
