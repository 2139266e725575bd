"""A short text message a visitor may leave when their call cannot happen.

Pure rules: which requests take a message and what a message may hold. The store writes it
(`store/messages.py`) and `services/messages.py` applies the limits.
"""

from __future__ import annotations

import unicodedata

from callnow.domain.request_state import RequestState
from callnow.i18n import gettext as _
from callnow.i18n import ngettext

MAX_CHARS = 500

# Where the call did not happen through nobody's fault on the visitor's side: the owner said no
# or did not answer, or the page was out of hours. Still running or completed requests take none
# (the call is, or was, the conversation); other rejections take none (a rule or the do-not-allow
# switch: the owner chose not to hear from them).
TAKES_MESSAGE = frozenset({RequestState.OWNER_DECLINED, RequestState.OWNER_UNREACHABLE})
OUT_OF_HOURS = (RequestState.REJECTED, "outside_hours")  # RejectReason.OUTSIDE_HOURS

# Line breaks and tabs are how people write; every other control or format character is refused.
_ALLOWED_CONTROLS = frozenset("\n\t")


class MessageInvalid(ValueError):
    """The text cannot be kept; the message says why, in words for the visitor."""


def takes_message(state: RequestState, reason: str) -> bool:
    return state in TAKES_MESSAGE or (state, reason) == OUT_OF_HOURS


def clean_message(text: str) -> str:
    """The message as stored: line endings made `\\n`, outer blank space dropped; refused when
    empty, longer than MAX_CHARS or holding control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise MessageInvalid(_("Please write a message."))
    if len(text) > MAX_CHARS:
        raise MessageInvalid(
            ngettext(
                "Your message is %(num)d character long; please keep it to %(max)d.",
                "Your message is %(num)d characters long; please keep it to %(max)d.",
                len(text),
            )
            % {"num": len(text), "max": MAX_CHARS}
        )
    if any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in _ALLOWED_CONTROLS
        for ch in text
    ):
        raise MessageInvalid(_("Your message contains control characters; please use plain text."))
    return text
