"""Page alerts: a page under a flood asks every visitor for a CAPTCHA for a while, and its owner
is told, through a webhook now and (by reading `unnotified`) the e-mail outbox later.

One alert per spike: while one is active, more posts extend nothing and alert no one again.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from callnow.domain.notices import Kind
from callnow.store import mail
from callnow.store.models import (
    PageAlert,
    Profile,
    UtcDateTime,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from callnow.store.prepared import Prepared
from callnow.store.webhooks import new_delivery_id

FLOOD = "flood"
EVENT_NAME = "page.captcha_required"


@cache  # built once: every form post asks
def _forced_query() -> Prepared:
    return Prepared(
        select(
            exists().where(
                PageAlert.profile_id == bindparam("profile_id"),
                PageAlert.until > bindparam("now", type_=UtcDateTime),
            )
        )
    )


def captcha_forced(session: Session, profile_id: int, now: datetime) -> bool:
    """True while a flood alert holds the page under CAPTCHA."""
    found = _forced_query().run(session.connection(), {"profile_id": profile_id, "now": now})
    return bool(found.scalar())


def raise_flood(
    session: Session, profile: Profile, now: datetime, until: datetime
) -> PageAlert | None:
    """Put the page under CAPTCHA until `until` and queue the owner's webhook; None (and
    nothing written) when an alert is already active."""
    if captcha_forced(session, profile.id, now):
        return None
    alert = PageAlert(profile_id=profile.id, kind=FLOOD, created_at=now, until=until)
    session.add(alert)
    session.flush()
    _enqueue_webhooks(session, profile, alert)
    return alert


def _enqueue_webhooks(session: Session, profile: Profile, alert: PageAlert) -> int:
    extension = profile.extension
    endpoints = session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.active.is_(True),
            (WebhookEndpoint.owner_user_id == extension.owner_user_id)
            | (
                WebhookEndpoint.owner_user_id.is_(None)
                & (WebhookEndpoint.tenant_id == extension.tenant_id)
            ),
        )
    ).all()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for endpoint_id in endpoints:
        delivery_id = new_delivery_id()
        payload = {
            "delivery_id": delivery_id,
            "event": EVENT_NAME,
            "page": {
                "callnow_id": profile.callnow_id,
                "reason": "unusual volume of requests",
                "at": alert.created_at.isoformat(),
                "captcha_required_until": alert.until.isoformat(),
            },
        }
        rows.append(
            {
                "delivery_id": delivery_id,
                "endpoint_id": endpoint_id,
                "request_id": None,
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


def tell_owners(session: Session, now: datetime) -> int:
    """Write the e-mail notice of each alert not told yet (the owner's choices apply), once."""
    told = 0
    for alert in unnotified(session):
        profile = session.get(Profile, alert.profile_id)
        owner_id = profile.extension.owner_user_id if profile is not None else None
        if profile is not None and owner_id is not None:
            details = {"callnow_id": profile.callnow_id, "until": f"{alert.until:%Y-%m-%d %H:%M}"}
            told += mail.enqueue(session, user_id=owner_id, kind=Kind.FLOOD, details=details)
        mark_notified(session, alert.id, now)
    return told


def unnotified(session: Session, limit: int = 50) -> list[PageAlert]:
    """Alerts no e-mail has been written for yet, oldest first (for the mail outbox)."""
    query = select(PageAlert).where(PageAlert.notified_at.is_(None)).order_by(PageAlert.id)
    return list(session.scalars(query.limit(limit)))


def mark_notified(session: Session, alert_id: int, now: datetime) -> None:
    session.execute(
        update(PageAlert)
        .where(PageAlert.id == alert_id)
        .values(notified_at=now)
        .execution_options(synchronize_session=False)
    )
