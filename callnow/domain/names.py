"""Caller names: what a visitor may call themselves on a public page."""

from __future__ import annotations

import unicodedata

from callnow.i18n import gettext as _
from callnow.i18n import ngettext

MAX_NAME_CHARS = 60


class InvalidName(ValueError):
    """The name cannot be used; the message says why."""


def clean_visitor_name(typed: str | None) -> str | None:
    """Trim and check a caller name; None when nothing was given."""
    if typed is None:
        return None
    name = " ".join(typed.split())
    if not name:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in typed):
        raise InvalidName(_("The name contains control characters."))
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(
            ngettext(
                "A name is at most %(num)d character.",
                "A name is at most %(num)d characters.",
                MAX_NAME_CHARS,
            )
            % {"num": MAX_NAME_CHARS}
        )
    return name
