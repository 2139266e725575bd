"""How long a request held for the owner's click in the portal may wait.

A request with decision `confirm_web` sits queued until the owner accepts or declines it on the
web. Nobody should wait for ever: after the timeout it ends as `owner_unreachable`, the same
answer the visitor gets when the owner's phone is not picked up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_TIMEOUT = timedelta(minutes=10)
OUTCOME_REASON = "no answer on the web"


def deadline(held_since: datetime, timeout: timedelta = DEFAULT_TIMEOUT) -> datetime:
    """The moment a held request stops waiting for the owner."""
    return held_since + timeout


def has_expired(held_since: datetime, now: datetime, timeout: timedelta = DEFAULT_TIMEOUT) -> bool:
    """True once the owner had the whole timeout and did not answer (the deadline itself counts)."""
    if timeout <= timedelta(0):
        raise ValueError("the web confirmation timeout must be positive")
    return now >= deadline(held_since, timeout)


def cutoff(now: datetime, timeout: timedelta = DEFAULT_TIMEOUT) -> datetime:
    """Requests held since this moment or earlier have expired (for one query over many)."""
    return now - timeout
