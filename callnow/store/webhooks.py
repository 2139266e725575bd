"""Webhook endpoints and their deliveries: enqueued with each request event, sent by a worker.

Enqueueing is an outbox: the delivery rows are written in the same transaction as the
`request_events` row they report, so a state change and its webhook are committed (or lost)
together, and sending happens later, outside any call path.

Every inserted `RequestEvent` enqueues by itself: importing this module registers a mapper
`after_insert` listener on RequestEvent. That catches every writer of history (`requests.move()`,
`record_new()`, the web confirmation) without each one having to remember a call, in every process
that imports this module (the web app does through `callnow.web.webhook_portal`; the engine
process must import it too). One delivery per history row: that includes the "accepted on the
web" entry, which keeps the state `queued` but tells the owner's systems what happened.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapper, Session, aliased

from callnow.domain.webhook_url import check_webhook_url
from callnow.store.models import (
    CallRequest,
    Extension,
    Profile,
    RequestEvent,
    User,
    UtcDateTime,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from callnow.store.prepared import Prepared

EVENT_NAME = "request.state_changed"
MESSAGE_EVENT = "request.message"
SECRET_BYTES = 32


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


def new_delivery_id() -> str:
    return uuid.uuid4().hex  # 32 characters, fits String(40)


# ---------------------------------------------------------------- endpoints (the portal)


def owner_endpoint(session: Session, user_id: int) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.owner_user_id == user_id, WebhookEndpoint.active.is_(True)
    )
    return session.scalars(query.order_by(WebhookEndpoint.id.desc())).first()


def tenant_endpoint(session: Session, tenant_id: int) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id,
        WebhookEndpoint.owner_user_id.is_(None),
        WebhookEndpoint.active.is_(True),
    )
    return session.scalars(query.order_by(WebhookEndpoint.id.desc())).first()


def _replace(session: Session, old: WebhookEndpoint | None, new: WebhookEndpoint) -> str:
    # The old row is kept (inactive) because its deliveries refer to it and stay visible.
    if old is not None:
        old.active = False
    session.add(new)
    session.flush()
    return new.secret


def set_owner_url(session: Session, user: User, url: str) -> tuple[WebhookEndpoint, str]:
    """Point the owner's webhook at `url` with a fresh secret (returned to be shown once)."""
    endpoint = WebhookEndpoint(
        owner_user_id=user.id, url=check_webhook_url(url), secret=new_secret(), active=True
    )
    return endpoint, _replace(session, owner_endpoint(session, user.id), endpoint)


def set_tenant_url(session: Session, tenant_id: int, url: str) -> tuple[WebhookEndpoint, str]:
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id, url=check_webhook_url(url), secret=new_secret(), active=True
    )
    return endpoint, _replace(session, tenant_endpoint(session, tenant_id), endpoint)


def clear(endpoint: WebhookEndpoint | None) -> None:
    """Stop sending; deliveries still pending for it are given up by the sender."""
    if endpoint is not None:
        endpoint.active = False


@dataclass(frozen=True)
class DeliveryRow:
    delivery: WebhookDelivery
    url: str
    state: str
    token: str


def recent_deliveries(
    session: Session,
    *,
    owner_user_id: int | None = None,
    tenant_id: int | None = None,
    limit: int = 50,
) -> list[DeliveryRow]:
    """Deliveries to the owner's (or the tenant's) endpoints, newest first."""
    scope = (
        WebhookEndpoint.owner_user_id == owner_user_id
        if owner_user_id is not None
        else and_(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.owner_user_id.is_(None))
    )
    # A message's delivery has no history row: it is listed as "message".
    state = func.coalesce(RequestEvent.state, "message")
    query = (
        select(WebhookDelivery, WebhookEndpoint.url, state, CallRequest.token)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .outerjoin(RequestEvent, RequestEvent.id == WebhookDelivery.request_event_id)
        .join(CallRequest, CallRequest.id == WebhookDelivery.request_id)
        .where(scope)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [DeliveryRow(d, url, state, token) for d, url, state, token in session.execute(query)]


# ---------------------------------------------------------------- enqueueing


def _payload(delivery_id: str, request: dict[str, Any], event_row: dict[str, Any]) -> dict:
    at = event_row["at"]
    payload: dict[str, Any] = {
        "delivery_id": delivery_id,
        "event": EVENT_NAME,
        "request": {
            "token": request["token"],
            "callnow_id": request["callnow_id"],
            "state": event_row["state"],
            "reason": event_row["reason"] or "",
            "at": at.isoformat() if isinstance(at, datetime) else str(at),
            "number": request["number_e164"],
            "caller_name": request["caller_name"],
        },
    }
    booked = request.get("scheduled_for")
    if booked is not None:  # a booked request: the slot it waits for (only then present)
        payload["request"]["scheduled_for"] = booked.isoformat()
    return payload


@cache
def _endpoints_of_request() -> Prepared:
    """The request's fields for the payload, once per active endpoint of its owner or tenant.

    Prepared once with the request id as a parameter: it runs on every state change."""
    owner_matches = and_(
        WebhookEndpoint.owner_user_id.is_not(None),
        WebhookEndpoint.owner_user_id == Extension.owner_user_id,
    )
    tenant_matches = and_(
        WebhookEndpoint.owner_user_id.is_(None), WebhookEndpoint.tenant_id == Extension.tenant_id
    )
    query = (
        select(
            WebhookEndpoint.id.label("endpoint_id"),
            CallRequest.token,
            CallRequest.number_e164,
            CallRequest.caller_name,
            CallRequest.scheduled_for,
            Profile.callnow_id,
        )
        .select_from(CallRequest)
        .join(Profile, Profile.id == CallRequest.profile_id)
        .join(Extension, Extension.id == Profile.extension_id)
        .join(
            WebhookEndpoint,
            and_(WebhookEndpoint.active.is_(True), or_(owner_matches, tenant_matches)),
        )
        .where(CallRequest.id == bindparam("request_id"))
        .order_by(WebhookEndpoint.id)
    )
    return Prepared(query)


_FOUND_IN_TRANSACTION = "callnow_webhook_endpoints"


def _endpoints_in_transaction(connection: Connection, request_id: int) -> list[dict[str, Any]]:
    """`_endpoints_of_request`, asked once per request and transaction: a new request writes
    two history rows in one flush, and each asked the same question of the database."""
    transaction = connection.get_transaction()
    known: tuple[object, dict[int, list[dict[str, Any]]]] | None
    known = connection.info.get(_FOUND_IN_TRANSACTION)
    if known is None or known[0] is not transaction:
        connection.info[_FOUND_IN_TRANSACTION] = known = (transaction, {})
    found = known[1].get(request_id)
    if found is None:
        found = known[1][request_id] = (
            _endpoints_of_request().run(connection, {"request_id": request_id}).mappings()
        )
    return found


def _enqueue(connection: Connection, event_row: dict[str, Any], *, check_existing: bool) -> int:
    """Write one delivery per active endpoint of the request's owner and of its tenant.

    Plain Core on the flush's own connection, so it joins the same transaction. One SELECT finds
    the request and its endpoints together, and returns nothing in the common case of no
    webhook at all: this runs on every state change, including the engine's."""
    found = _endpoints_in_transaction(connection, event_row["request_id"])
    if not found:
        return 0
    already: set[int] = set()
    if check_existing:  # an explicit enqueue_for_event() after the listener already did it
        already = set(
            connection.execute(
                select(WebhookDelivery.endpoint_id).where(
                    WebhookDelivery.request_event_id == event_row["id"]
                )
            ).scalars()
        )
    now = utcnow()
    rows = []
    for match in found:
        if match["endpoint_id"] in already:
            continue
        delivery_id = new_delivery_id()
        rows.append(
            {
                "delivery_id": delivery_id,
                "endpoint_id": match["endpoint_id"],
                "request_id": event_row["request_id"],
                "request_event_id": event_row["id"],
                "payload": _payload(delivery_id, dict(match), event_row),
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
            }
        )
    if rows:
        connection.execute(insert(WebhookDelivery), rows)
    return len(rows)


def _event_row(target: RequestEvent) -> dict[str, Any]:
    return {
        "id": target.id,
        "request_id": target.request_id,
        "state": target.state,
        "reason": target.reason,
        "at": target.at,
    }


def enqueue_for_event(session: Session, request: CallRequest, event_row: RequestEvent) -> int:
    """Enqueue deliveries for one history row (flushed first so it has an id). Not needed where
    the listener below is registered, and harmless there: an endpoint is never enqueued twice."""
    session.flush()
    assert event_row.request_id == request.id
    return _enqueue(session.connection(), _event_row(event_row), check_existing=True)


@event.listens_for(RequestEvent, "after_insert")
def _on_request_event(_mapper: Mapper[Any], connection: Connection, target: RequestEvent) -> None:
    _enqueue(connection, _event_row(target), check_existing=False)


def enqueue_inserted(connection: Connection, event_row: dict[str, Any]) -> int:
    """Enqueue for a history row inserted with plain Core, which the listener above never sees:
    `event_row` has the row's id, request_id, state, reason and at."""
    return _enqueue(connection, event_row, check_existing=False)


def enqueue_message(session: Session, request: CallRequest) -> int:
    """One `request.message` delivery per active endpoint, for the message just kept on the
    request. No history row: a message changes no state. Queued behind the request's earlier
    deliveries, like every delivery of one request."""
    found = _endpoints_in_transaction(session.connection(), request.id)
    now = utcnow()
    at = request.message_at or now
    rows = []
    for match in found:
        delivery_id = new_delivery_id()
        payload = {
            "delivery_id": delivery_id,
            "event": MESSAGE_EVENT,
            "request": {
                "token": match["token"],
                "callnow_id": match["callnow_id"],
                "state": request.state,
                "number": match["number_e164"],
                "caller_name": match["caller_name"],
                "message": request.message,
                "at": at.isoformat(),
            },
        }
        rows.append(
            {
                "delivery_id": delivery_id,
                "endpoint_id": match["endpoint_id"],
                "request_id": request.id,
                "request_event_id": None,
                "payload": payload,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
            }
        )
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return len(rows)


# ---------------------------------------------------------------- the sender's side


@dataclass(frozen=True)
class Due:
    id: int
    delivery_id: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    endpoint_active: bool


def _pending() -> Any:
    return and_(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.gave_up_at.is_(None))


@cache
def _due_query() -> Select[WebhookDelivery, WebhookEndpoint]:
    # Built once: the sender asks every second, and building it (with its alias) each time
    # left a few hundred objects a second for the cyclic garbage collector.
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.request_id == WebhookDelivery.request_id,
        earlier.id < WebhookDelivery.id,
        earlier.delivered_at.is_(None),
        earlier.gave_up_at.is_(None),
    )
    return (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            _pending(),
            WebhookDelivery.next_attempt_at <= bindparam("now", type_=UtcDateTime),
            ~blocked,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(bindparam("limit", type_=Integer))
    )


def due(session: Session, now: datetime, limit: int = 50) -> list[Due]:
    """Deliveries whose time has come and that are first in line for their request and endpoint:
    event N+1 waits while event N is neither delivered nor given up."""
    return [
        Due(
            id=d.id,
            delivery_id=d.delivery_id,
            url=e.url,
            secret=e.secret,
            payload=d.payload,
            attempts=d.attempts,
            created_at=d.created_at,
            endpoint_active=e.active,
        )
        for d, e in session.execute(_due_query(), {"now": now, "limit": limit})
    ]


def claim(session: Session, item: Due, now: datetime, lease: timedelta) -> bool:
    """Take one delivery for `lease` by pushing its next attempt out, only if it is still due, so
    two senders never POST the same delivery at once. A sender that dies leaves it due again."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id, _pending(), WebhookDelivery.next_attempt_at <= now)
        .values(next_attempt_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult


def record_delivered(session: Session, item: Due, status: int, now: datetime) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id)
        .values(attempts=item.attempts + 1, last_status=status, last_error="", delivered_at=now)
        .execution_options(synchronize_session=False)
    )


def record_failed(
    session: Session,
    item: Due,
    *,
    status: int | None,
    error: str,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    """One more failed attempt; `retry_at` None means we give up on this delivery."""
    values: dict[str, Any] = {
        "attempts": item.attempts + 1,
        "last_status": status,
        "last_error": error[:300],
    }
    if retry_at is None:
        values["gave_up_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def backlog(session: Session) -> int:
    """Deliveries neither delivered nor given up: the outbox the sender still has to empty."""
    query = select(func.count()).select_from(WebhookDelivery).where(_pending())
    return int(session.scalar(query) or 0)
