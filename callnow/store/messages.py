"""Visitors' messages, kept on their request: written once, and only where the call ended in a
state that takes one (`domain/left_message.TAKES_MESSAGE`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from callnow.domain.left_message import OUT_OF_HOURS, TAKES_MESSAGE
from callnow.store.models import CallRequest


def attach(session: Session, call_request: CallRequest, text: str, at: datetime) -> bool:
    """Keep `text` on the request; False when it already has one or no longer takes one.

    One conditional UPDATE, so two posts at once cannot both write (the second finds the
    message there)."""
    result = session.execute(
        update(CallRequest)
        .where(
            CallRequest.id == call_request.id,
            CallRequest.message.is_(None),
            or_(
                CallRequest.state.in_([s.value for s in TAKES_MESSAGE]),
                and_(
                    CallRequest.state == OUT_OF_HOURS[0].value,
                    CallRequest.reason == OUT_OF_HOURS[1],
                ),
            ),
        )
        .values(message=text, message_at=at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult
        return False
    session.refresh(call_request, ["message", "message_at"])
    return True
