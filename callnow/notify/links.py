"""Signed one-click Accept / Decline links for a request awaiting the owner on the web.

The link carries the request's token, the answer and an expiry, signed with the web secret key.
It is deterministic (no issue timestamp), so a retried mail carries the very same link. It works
once because answering goes through the same web confirmation as the portal's Pending page,
which only changes a request that is still waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "callnow.mail-answer"
ACTIONS = ("accept", "decline")
MAX_LINK_CHARS = 400


@dataclass(frozen=True)
class Answer:
    token: str
    action: str
    expires_at: datetime


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def sign(secret_key: str, token: str, action: str, expires_at: datetime) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown answer {action!r}")
    payload = {"t": token, "a": action, "e": int(expires_at.timestamp())}
    return str(_serializer(secret_key).dumps(payload))


def verify(secret_key: str, signed: str, now: datetime) -> Answer | None:
    """The answer a link stands for, or None if it is forged, malformed or expired."""
    if not signed or len(signed) > MAX_LINK_CHARS:
        return None
    try:
        payload = _serializer(secret_key).loads(signed)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    token, action, expires = payload.get("t"), payload.get("a"), payload.get("e")
    if not isinstance(token, str) or action not in ACTIONS or not isinstance(expires, int):
        return None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        return None
    return Answer(token=token, action=str(action), expires_at=expires_at)
