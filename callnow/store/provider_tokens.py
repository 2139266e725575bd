"""Provider API tokens: issued, looked up by their secret, revoked, and every use logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callnow.store.models import utcnow
from callnow.store.provider_models import ProviderToken, ProviderTokenUse

TOKEN_PREFIX = "cnp"  # apart from the owners' "cn" keys, so one is never taken for the other
MAX_PRESENTED_CHARS = 200


@dataclass(frozen=True)
class IssuedToken:
    token: ProviderToken
    secret: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(
    session: Session, *, label: str, scopes: Sequence[str], tenant_id: int | None
) -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    token = ProviderToken(
        token_id=token_id,
        secret_hash=_digest(secret),
        label=label[:60],
        scopes=sorted(set(scopes)),
        tenant_id=tenant_id,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def presented(session: Session, secret: str) -> ProviderToken | None:
    """The token whose secret this is, revoked or not (the caller decides); constant-time."""
    secret = secret.strip()
    parts = secret.split("_", 2)
    if len(secret) > MAX_PRESENTED_CHARS or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = by_token_id(session, parts[1])
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)):
        return None
    return token


def by_token_id(session: Session, token_id: str) -> ProviderToken | None:
    return session.scalars(select(ProviderToken).where(ProviderToken.token_id == token_id)).first()


def revoke(session: Session, token_id: str) -> ProviderToken | None:
    """Revoke a token (once: a second revoke keeps the first time); None when unknown."""
    token = by_token_id(session, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def listed(session: Session) -> list[ProviderToken]:
    return list(session.scalars(select(ProviderToken).order_by(ProviderToken.id)))


def record_use(
    session: Session, token_pk: int, *, method: str, route: str, status: int, source: str
) -> None:
    session.add(
        ProviderTokenUse(
            token_id=token_pk,
            method=method[:8],
            route=route[:120],
            status=status,
            source_address=source[:45],
        )
    )
    token = session.get(ProviderToken, token_pk)
    if token is not None:
        token.last_used_at = utcnow()
    session.flush()


def uses_of(session: Session, token_pk: int, limit: int = 100) -> list[ProviderTokenUse]:
    query = (
        select(ProviderTokenUse)
        .where(ProviderTokenUse.token_id == token_pk)
        .order_by(ProviderTokenUse.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
