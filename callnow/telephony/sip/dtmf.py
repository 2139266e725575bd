"""DTMF carried in SIP INFO bodies (the fallback when a phone does not send RFC 4733).

Two body formats are common: `application/dtmf-relay` (Cisco style, `Signal=1` and
`Duration=160` lines) and `application/dtmf` (the body is just the key). Some phones send the
RFC 4733 event number instead of the key (10 for `*`, 11 for `#`), so both are accepted.
"""

from __future__ import annotations

from typing import Any

_KEYS = "0123456789*#ABCD"
MAX_BODY_CHARS = 512


def normalise_key(value: str) -> str | None:
    """Return the key for a signal value ('1', '*', '10', 'a'), or None if it is not one."""
    value = value.strip().upper()
    if len(value) == 1 and value in _KEYS:
        return value
    if value.isdigit() and int(value) < len(_KEYS):
        return _KEYS[int(value)]
    return None


def parse_dtmf_body(content_type: str, text: str) -> tuple[str, int | None] | None:
    """(key, duration in ms or None) from an INFO body, or None when it carries no key."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    text = text[:MAX_BODY_CHARS]
    if content_type == "application/dtmf":
        key: str | None = normalise_key(text)
        return (key, None) if key else None
    if content_type != "application/dtmf-relay":
        return None
    key = None
    duration: int | None = None
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        if name == "signal":
            key = normalise_key(value)
        elif name == "duration" and value.strip().isdigit():
            duration = int(value.strip())
    return (key, duration) if key else None


def digit_from_info(body: Any) -> tuple[str, int | None] | None:
    """Same as parse_dtmf_body, for a sippy MsgBody (None when the INFO had no body)."""
    if body is None or body.mtype is None:
        return None
    mtype = body.mtype
    if not mtype.parsed:
        mtype.parse()
    return parse_dtmf_body(str(mtype.name or ""), str(body.content))
