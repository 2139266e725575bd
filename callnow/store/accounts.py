"""Users, passwords and Call API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callnow.store.models import ApiKey, User, utcnow

_passwords = PasswordHash((Argon2Hasher(),))
# A hash to check against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _passwords.hash("not-a-real-password")
API_KEY_PREFIX = "cn"
MIN_PASSWORD_CHARS = 10


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"A password is at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > 256:
        raise WeakPassword("A password is at most 256 characters.")
    return _passwords.hash(password)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def by_email(session: Session, email: str) -> User | None:
    query = select(User).where(func.lower(User.email) == normalise_email(email))
    return session.scalars(query).first()


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = by_email(session, email[:254])
    if user is None or not user.is_active:
        _passwords.verify(password[:256], _DUMMY_HASH)
        return None
    valid, new_hash = _passwords.verify_and_update(password[:256], user.password_hash)
    if not valid:
        return None
    if new_hash:
        user.password_hash = new_hash
    return user


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown to the owner once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(session: Session, user: User, label: str = "") -> IssuedKey:
    key_id = secrets.token_hex(6)
    secret_part = secrets.token_urlsafe(32)
    secret = f"{API_KEY_PREFIX}_{key_id}_{secret_part}"
    key = ApiKey(user_id=user.id, key_id=key_id, secret_hash=_digest(secret), label=label[:60])
    session.add(key)
    session.flush()
    return IssuedKey(key, secret)


def api_key_owner(session: Session, presented: str) -> ApiKey | None:
    """The live key behind a presented secret, or None; constant-time on the secret."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(presented) > 200:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == parts[1])).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _digest(presented.strip())):
        return None
    key.last_used_at = utcnow()
    return key


def keys_of(session: Session, user_id: int) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
    return list(session.scalars(query))
