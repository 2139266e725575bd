"""Requests waiting for the owner's Accept or Decline in the portal, and their expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from callnow.domain import web_confirmation as rules
from callnow.domain.decision import Outcome
from callnow.domain.request_state import RequestState
from callnow.store.guarded import move_if, update_if
from callnow.store.models import CallRequest, Extension, Profile, RequestEvent, utcnow
from callnow.store.requests import append_event

ACCEPTED_REASON = "accepted on the web"
DECLINED_REASON = "declined on the web"

_HELD = (
    CallRequest.state == RequestState.QUEUED.value,
    CallRequest.decision == Outcome.CONFIRM_ON_WEB.value,
)


def pending_for_owner(session: Session, user_id: int) -> list[CallRequest]:
    """The owner's requests still waiting for a click, oldest first."""
    query = (
        select(CallRequest)
        .join(CallRequest.profile)
        .join(Profile.extension)
        .where(Extension.owner_user_id == user_id, *_HELD)
        .options(joinedload(CallRequest.profile))
        .order_by(CallRequest.created_at, CallRequest.id)
    )
    return list(session.scalars(query))


def owned_request(session: Session, user_id: int, token: str) -> CallRequest | None:
    """A request of this owner by token; someone else's looks exactly like an unknown one."""
    if not token or len(token) > 64:
        return None
    query = (
        select(CallRequest)
        .join(CallRequest.profile)
        .join(Profile.extension)
        .where(CallRequest.token == token, Extension.owner_user_id == user_id)
    )
    return session.scalars(query).first()


def accept(
    session: Session,
    request: CallRequest,
    now: datetime | None = None,
    timeout: timedelta = rules.DEFAULT_TIMEOUT,
) -> bool:
    """Hand a held request to the dispatcher (decision `web`). It stays queued, so the normal
    claim picks it up; False if it was no longer held or had already waited too long."""
    now = now or utcnow()
    changed = update_if(
        session,
        request,
        {"decision": Outcome.ACCEPTED_ON_WEB.value},
        only_if=(*_HELD, CallRequest.created_at > rules.cutoff(now, timeout)),
    )
    if changed:
        append_event(
            request, RequestEvent(at=now, state=RequestState.QUEUED.value, reason=ACCEPTED_REASON)
        )
        session.flush()
    return changed


def decline(session: Session, request: CallRequest, now: datetime | None = None) -> bool:
    return move_if(
        session, request, RequestState.OWNER_DECLINED, DECLINED_REASON, only_if=_HELD, now=now
    )


def expire_web_confirmations(
    session: Session, now: datetime, timeout: timedelta = rules.DEFAULT_TIMEOUT
) -> int:
    """End every request that waited longer than `timeout` for the owner's click as
    `owner_unreachable`; returns how many. Safe to run from several processes at once."""
    query = (
        select(CallRequest)
        .where(*_HELD, CallRequest.created_at <= rules.cutoff(now, timeout))
        .order_by(CallRequest.id)
        .limit(500)
    )
    expired = 0
    for request in session.scalars(query).all():
        if move_if(
            session,
            request,
            RequestState.OWNER_UNREACHABLE,
            rules.OUTCOME_REASON,
            only_if=_HELD,
            now=now,
        ):
            expired += 1
    return expired
