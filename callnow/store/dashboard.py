"""The admin dashboard's figures: one day's requests, calls, failures and spend, platform-wide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from callnow.domain.request_state import RequestState
from callnow.store.billing_models import ChargeRow
from callnow.store.models import CallLeg, CallRequest, RequestEvent

# Requests that ended without the call the visitor asked for, through no choice of the owner's.
FAILED_STATES = (
    RequestState.FAILED,
    RequestState.INTERRUPTED,
    RequestState.OWNER_UNREACHABLE,
    RequestState.VISITOR_UNREACHABLE,
)


@dataclass(frozen=True)
class DaySummary:
    requests: int
    calls: int  # callbacks that rang the owner (one owner leg per request)
    failures: int
    spend_minor: dict[str, int]  # gross, by currency


def day_summary(session: Session, start: datetime, end: datetime) -> DaySummary:
    """Figures for requests made, owner legs started and charges answered in [start, end)."""
    made = (CallRequest.created_at >= start) & (CallRequest.created_at < end)
    requests = session.scalar(select(func.count()).select_from(CallRequest).where(made)) or 0
    failures = session.scalar(
        select(func.count())
        .select_from(CallRequest)
        .where(made, CallRequest.state.in_([s.value for s in FAILED_STATES]))
    )
    calls = session.scalar(
        select(func.count())
        .select_from(CallLeg)
        .where(CallLeg.role == "owner", CallLeg.started_at >= start, CallLeg.started_at < end)
    )
    spend = session.execute(
        select(ChargeRow.currency, func.sum(ChargeRow.gross_minor))
        .where(ChargeRow.answered_at >= start, ChargeRow.answered_at < end)
        .group_by(ChargeRow.currency)
        .order_by(ChargeRow.currency)
    )
    return DaySummary(
        requests=requests,
        calls=calls or 0,
        failures=failures or 0,
        spend_minor={currency: int(total or 0) for currency, total in spend},
    )


def latest_requests(session: Session, limit: int = 10) -> list[CallRequest]:
    """The newest requests, their pages loaded, for the dashboard's list."""
    query = (
        select(CallRequest)
        .options(joinedload(CallRequest.profile))
        .order_by(CallRequest.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def request_history(session: Session, request_id: int) -> tuple[list[RequestEvent], list[CallLeg]]:
    """A request's event history and its legs, oldest first."""
    events = session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id)
    )
    legs = session.scalars(
        select(CallLeg).where(CallLeg.request_id == request_id).order_by(CallLeg.id)
    )
    return list(events), list(legs)
