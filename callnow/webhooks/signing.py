"""The signature a receiver checks: HMAC-SHA256 of the exact body bytes with the endpoint secret.

Receivers verify with the raw body they received (not re-serialised JSON). The body carries the
`delivery_id`, which is also sent as `X-CallNow-Delivery`: a receiver that remembers the ids it
has processed ignores a replayed or retried delivery. `X-CallNow-Timestamp` (Unix seconds of the
attempt) is informational; it is not part of the signed bytes.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-CallNow-Signature"
DELIVERY_HEADER = "X-CallNow-Delivery"
TIMESTAMP_HEADER = "X-CallNow-Timestamp"


def signature(secret: str, body: bytes) -> str:
    """The header value: `sha256=<hex>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does (and our tests do): constant-time compare of the header."""
    return bool(header) and hmac.compare_digest(signature(secret, body), header or "")
