"""Call legs left up by an engine that died, and how their ends are recorded.

A leg whose request already reached a final state but which has no end of its own was dialled
by an engine that is gone (a live engine stores a leg's record before, or with, its request's
final state). Whoever finds such a leg ends the call with the leg's prepared hangup and records
the end here: answered legs bill from their stored answer time to this end, the time the call
was really taken down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callnow.domain.calls import Disposition, LegRole, PreparedHangup, billable_seconds
from callnow.domain.request_state import TERMINAL
from callnow.store.models import CallLeg, CallRequest


@dataclass(frozen=True)
class AbandonedLeg:
    leg_id: int
    request_id: int
    role: LegRole
    answered_at: datetime | None
    # None when the engine died before it could store one (between INVITE and its row update).
    hangup: PreparedHangup | None


def abandoned_legs(session: Session, *, limit: int = 100) -> list[AbandonedLeg]:
    query = (
        select(CallLeg)
        .join(CallRequest, CallRequest.id == CallLeg.request_id)
        .where(
            CallLeg.ended_at.is_(None),
            CallRequest.state.in_([state.value for state in TERMINAL]),
        )
        .order_by(CallLeg.id)
        .limit(limit)
    )
    return [_abandoned(leg) for leg in session.scalars(query)]


def _abandoned(leg: CallLeg) -> AbandonedLeg:
    hangup = None
    if leg.hangup_method and leg.hangup_message and leg.hangup_host and leg.hangup_port:
        hangup = PreparedHangup(
            method=leg.hangup_method,
            message=leg.hangup_message,
            target_host=leg.hangup_host,
            target_port=leg.hangup_port,
            sip_call_id=leg.sip_call_id or "",
            media_call_id=leg.media_call_id or "",
        )
    return AbandonedLeg(leg.id, leg.request_id, LegRole(leg.role), leg.answered_at, hangup)


def record_abandoned_end(session: Session, leg: AbandonedLeg, ended_at: datetime) -> bool:
    """Record the end of an abandoned leg; False if someone else recorded it first."""
    ended_at = max(ended_at, leg.answered_at) if leg.answered_at else ended_at
    answered = leg.answered_at is not None
    result = session.execute(
        update(CallLeg)
        .where(CallLeg.id == leg.leg_id, CallLeg.ended_at.is_(None))
        .values(
            ended_at=ended_at,
            disposition=(Disposition.ANSWERED if answered else Disposition.CANCELLED).value,
            billable_seconds=billable_seconds(leg.answered_at, ended_at),
        )
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]  # an UPDATE: CursorResult
