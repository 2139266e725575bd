"""Password reset tokens: only their SHA-256 is stored; each expires and works once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callnow.domain.notices import Kind
from callnow.store import accounts, mail
from callnow.store.models import User
from callnow.store.notify_models import PasswordReset

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(session: Session, email: str, now: datetime, valid_for: timedelta) -> bool:
    """Mail a reset link to the account at `email`, if there is an active one. The caller answers
    the same either way; the return value is for tests and logs only."""
    user = accounts.by_email(session, email)
    if user is None or not user.is_active:
        return False
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        PasswordReset(
            user_id=user.id, token_hash=_hash(token), created_at=now, expires_at=now + valid_for
        )
    )
    session.flush()
    # The raw token rides in the outbox only until the mail is sent (mark_sent clears it).
    mail.enqueue(session, user_id=user.id, kind=Kind.PASSWORD_RESET, details={"token": token})
    return True


def _usable(token: str, now: datetime) -> tuple:
    return (
        PasswordReset.token_hash == _hash(token),
        PasswordReset.used_at.is_(None),
        PasswordReset.expires_at > now,
    )


def is_valid(session: Session, token: str, now: datetime) -> bool:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    return session.scalar(select(PasswordReset.id).where(*_usable(token, now))) is not None


def reset_password(session: Session, token: str, new_password: str, now: datetime) -> User | None:
    """Spend the token and set the password; None if the token is unknown, used or expired.
    Raises accounts.WeakPassword (before spending it) for a password that is too weak."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    new_hash = accounts.hash_password(new_password)
    user_id = session.scalar(
        update(PasswordReset)
        .where(*_usable(token, now))
        .values(used_at=now)
        .returning(PasswordReset.user_id)
        .execution_options(synchronize_session=False)
    )
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    user.password_hash = new_hash
    # Every other link of this account dies with the one used.
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return user
