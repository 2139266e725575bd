"""Server-side sessions: start, find (touching last seen), list, revoke."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callnow.domain.sign_in import Lifetimes, is_live
from callnow.store.models import User
from callnow.store.session_models import WebSession

Realm = Literal["portal", "admin"]
# Tokens are 43 characters of URL-safe base64; anything else is not ours.
TOKEN_CHARS = 43
# Last seen is written at most this often, so reading pages does not mean writing rows.
TOUCH_EVERY = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session, user: User, realm: Realm, *, user_agent: str, network: str, now: datetime
) -> tuple[str, WebSession]:
    """A new session; the token goes to the browser and is never stored."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_hash(token),
        user_id=user.id,
        realm=realm,
        csrf_key=secrets.token_hex(16),
        created_at=now,
        last_seen_at=now,
        user_agent=user_agent[:200],
        network=network[:64],
    )
    session.add(row)
    session.flush()
    return token, row


def find(
    session: Session, token: str, realm: Realm, now: datetime, lifetimes: Lifetimes
) -> WebSession | None:
    """The live session of this token, its user active; last seen moves on at most once a minute."""
    if len(token) != TOKEN_CHARS:
        return None
    row = session.scalars(
        select(WebSession).where(WebSession.token_hash == _hash(token), WebSession.realm == realm)
    ).one_or_none()
    if row is None or not is_live(row.created_at, row.last_seen_at, row.revoked_at, now, lifetimes):
        return None
    if not row.user.is_active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def revoke(session: Session, row: WebSession, now: datetime) -> None:
    if row.revoked_at is None:
        row.revoked_at = now


def revoke_all(session: Session, user_id: int, now: datetime) -> int:
    """End every session of a user, portal and admin alike; how many were still open."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a CursorResult


def live_of(
    session: Session, user_id: int, now: datetime, lifetimes: Lifetimes
) -> list[WebSession]:
    """The user's sessions that still count (portal and admin), most recently seen first."""
    rows = session.scalars(
        select(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.revoked_at.is_(None),
            WebSession.created_at > now - lifetimes.absolute,
            WebSession.last_seen_at > now - lifetimes.idle,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
        .limit(100)
    )
    return list(rows)


def owned(session: Session, user_id: int, session_id: int) -> WebSession | None:
    row = session.get(WebSession, session_id)
    return row if row is not None and row.user_id == user_id else None


def known_networks(session: Session, user_id: int) -> set[str]:
    """Networks the user has signed in from before (any realm, ended sessions included)."""
    rows = session.scalars(
        select(WebSession.network).where(WebSession.user_id == user_id).distinct().limit(1000)
    )
    return set(rows)


def all_live(session: Session, now: datetime, lifetimes: Lifetimes) -> list[WebSession]:
    """Everyone's live sessions (for the platform admin), most recently seen first."""
    rows = session.scalars(
        select(WebSession)
        .where(
            WebSession.revoked_at.is_(None),
            WebSession.created_at > now - lifetimes.absolute,
            WebSession.last_seen_at > now - lifetimes.idle,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
        .limit(500)
    )
    return list(rows)


def by_id(session: Session, session_id: int) -> WebSession | None:
    return session.get(WebSession, session_id)


def still_live(session: Session, session_id: int, now: datetime, lifetimes: Lifetimes) -> bool:
    """Whether a session a long-lived stream started under still counts (never touches it)."""
    row = session.get(WebSession, session_id)
    return (
        row is not None
        and is_live(row.created_at, row.last_seen_at, row.revoked_at, now, lifetimes)
        and row.user.is_active
    )
