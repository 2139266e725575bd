"""CallNow IDs: the public handle in an owner's URL (`/callnow/john_doe`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from callnow.i18n import gettext as _
from callnow.i18n import ngettext

MIN_CHARS, MAX_CHARS = 3, 32
_PATTERN = re.compile(r"[a-z0-9_.\-]+")
# Words that would read as the service itself or collide with its routes.
RESERVED = frozenset(
    {
        "admin",
        "administrator",
        "api",
        "callnow",
        "docs",
        "health",
        "help",
        "login",
        "logout",
        "openapi",
        "portal",
        "requests",
        "root",
        "static",
        "support",
        "system",
        "www",
        "null",
        "undefined",
        "abuse",
        "security",
        "billing",
        "webhook",
        "webhooks",
        "status",
        "owner",
    }
)


# A renamed ID keeps leading to its page, and no other page may take it for this long, so a
# printed card or QR code never reaches a stranger's page.
RETIRED_ID_HELD = timedelta(days=366)


def held_until(retired_at: datetime) -> datetime:
    return retired_at + RETIRED_ID_HELD


def held_refusal(callnow_id: str) -> str:
    """Why a retired ID cannot be claimed, without saying whose page it was."""
    return _(
        "The CallNow ID '%(id)s' was renamed recently; it still leads to that page and "
        "stays reserved for at least a year after a rename. Please choose another CallNow ID."
    ) % {"id": callnow_id}


class InvalidCallNowId(ValueError):
    """The ID cannot be used; the message says why."""


def normalise_callnow_id(typed: str) -> str:
    """Lower-case and validate; IDs are unique case-insensitively, so the stored form is lower."""
    value = typed.strip().lower()
    if not MIN_CHARS <= len(value) <= MAX_CHARS:
        raise InvalidCallNowId(
            ngettext(
                "A CallNow ID is %(least)d to %(most)d character long.",
                "A CallNow ID is %(least)d to %(most)d characters long.",
                MAX_CHARS,
            )
            % {"least": MIN_CHARS, "most": MAX_CHARS}
        )
    if not _PATTERN.fullmatch(value):
        raise InvalidCallNowId(_("A CallNow ID may contain only a-z, 0-9, _ . and -."))
    if value.strip("._-") != value:
        raise InvalidCallNowId(_("A CallNow ID must start and end with a letter or digit."))
    if value in RESERVED:
        raise InvalidCallNowId(
            _("'%(id)s' is reserved; please choose another CallNow ID.") % {"id": value}
        )
    return value
