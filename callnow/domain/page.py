"""The limits and states of an owner's public page, the same from the portal, the API and admin."""

from __future__ import annotations

from datetime import datetime

# Weekly time windows on one page: three a day is already unusual.
MAX_WINDOWS = 21
# Ordered rules on one page; each is checked for every request.
MAX_RULES = 50
WELCOME_MAX_CHARS = 500


def is_paused(paused_until: datetime | None, now: datetime) -> bool:
    """A page pauses itself under a spike of posts: it then answers like an unknown page."""
    return paused_until is not None and paused_until > now
