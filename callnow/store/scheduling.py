"""Booked slots: how many open requests each slot of a page holds, and a page's coming
bookings for the portal."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from callnow.domain.request_state import TERMINAL
from callnow.store.models import CallRequest, Profile

_CLOSED = tuple(state.value for state in TERMINAL)


def lock_page(session: Session, profile_id: int) -> None:
    """Hold the page's row until commit (PostgreSQL), so two visitors booking the last place of
    a slot at once are counted one after the other. SQLite has one writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Profile.id).where(Profile.id == profile_id).with_for_update())


def booked_counts(
    session: Session, profile_id: int, start: datetime, end: datetime
) -> Counter[datetime]:
    """Open bookings per slot start, for slots from `start` to `end` (inclusive)."""
    rows = session.execute(
        select(CallRequest.scheduled_for, func.count())
        .where(
            CallRequest.profile_id == profile_id,
            CallRequest.scheduled_for.is_not(None),
            CallRequest.scheduled_for >= start,
            CallRequest.scheduled_for <= end,
            CallRequest.state.not_in(_CLOSED),
        )
        .group_by(CallRequest.scheduled_for)
    )
    return Counter({slot: count for slot, count in rows if slot is not None})


def upcoming(session: Session, profile_ids: list[int], since: datetime) -> list[CallRequest]:
    """The pages' open bookings whose slot is at or after `since`, soonest first."""
    if not profile_ids:
        return []
    return list(
        session.scalars(
            select(CallRequest)
            .where(
                CallRequest.profile_id.in_(profile_ids),
                CallRequest.scheduled_for.is_not(None),
                CallRequest.scheduled_for >= since,
                CallRequest.state.not_in(_CLOSED),
            )
            .options(joinedload(CallRequest.profile))
            .order_by(CallRequest.scheduled_for, CallRequest.id)
            .limit(200)
        )
    )
