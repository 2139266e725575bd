"""The platform's do-not-call list: numbers no CallNow page may ever call."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callnow.store.models import DoNotCall


def is_listed(session: Session, e164: str) -> bool:
    return session.scalars(select(DoNotCall.id).where(DoNotCall.e164 == e164)).first() is not None


def add(session: Session, e164: str, reason: str = "") -> bool:
    """Put a number on the list; False when it was there already."""
    if is_listed(session, e164):
        return False
    session.add(DoNotCall(e164=e164, reason=reason[:200]))
    session.flush()
    return True


def remove(session: Session, e164: str) -> bool:
    result = session.execute(delete(DoNotCall).where(DoNotCall.e164 == e164))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # a DELETE gives a CursorResult


def listed(session: Session) -> list[DoNotCall]:
    return list(session.scalars(select(DoNotCall).order_by(DoNotCall.e164)))
