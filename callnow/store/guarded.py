"""State changes that only happen if nobody else changed the request first.

The web (a visitor cancelling, an owner declining) races with the engine dispatcher claiming the
same queued request. Reading the row and then writing it would let the later writer silently win.
Instead the state column is changed by one conditional UPDATE (`... WHERE state = :seen AND
<extra conditions>`): on PostgreSQL it waits for the dispatcher's row lock and re-checks, on
SQLite writers are serialised anyway. Only when that UPDATE hit the row is the history written,
through `requests.move()`, so history looks the same as for every other move.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlalchemy.orm import Session

from callnow.domain.request_state import RequestState, check_transition
from callnow.store.models import CallRequest, RequestEvent
from callnow.store.requests import append_event, move


def move_if(
    session: Session,
    request: CallRequest,
    new_state: RequestState,
    reason: str,
    *,
    only_if: Iterable[ColumnElement[bool]] = (),
    now: datetime | None = None,
) -> bool:
    """Move `request` to `new_state` if it is still in the state we read and `only_if` holds."""
    seen = RequestState(request.state)
    check_transition(seen, new_state)  # an illegal move is a bug, not a lost race
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # UPDATE: a cursor
        update(CallRequest)
        .where(CallRequest.id == request.id, CallRequest.state == seen.value, *only_if)
        .values(state=new_state.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(request)
        return False
    move(request, new_state, reason, now=now)
    session.flush()
    return True


def update_if(
    session: Session,
    request: CallRequest,
    values: dict[str, Any],
    *,
    only_if: Iterable[ColumnElement[bool]] = (),
) -> bool:
    """Change columns other than the state, if the request is still in the state we read."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # UPDATE: a cursor
        update(CallRequest)
        .where(CallRequest.id == request.id, CallRequest.state == request.state, *only_if)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    return result.rowcount == 1


def _not_held(now: datetime) -> ColumnElement[bool]:
    """No engine holds the request (never claimed, or its lease ran out)."""
    return or_(
        CallRequest.claimed_by.is_(None),
        CallRequest.lease_expires_at.is_(None),
        CallRequest.lease_expires_at < now,
    )


VISITOR_CANCELLED = "cancelled by the visitor"
VISITOR_ASKED_TO_CANCEL = "the visitor asked to cancel"


def cancel_for_visitor(session: Session, request: CallRequest, now: datetime) -> None:
    """Cancel a request the visitor no longer wants (the caller checked it is still cancellable).

    Nobody holds a queued request, so it is cancelled here, unless an engine claimed it in the
    meantime. Otherwise the wish is recorded and the engine holding it ends the call.
    """
    if request.state == RequestState.QUEUED.value and move_if(
        session,
        request,
        RequestState.CANCELLED,
        VISITOR_CANCELLED,
        only_if=(_not_held(now),),
        now=now,
    ):
        return
    if request.cancel_requested_at is None:
        request.cancel_requested_at = now
        append_event(
            request, RequestEvent(at=now, state=request.state, reason=VISITOR_ASKED_TO_CANCEL)
        )
