"""Which incoming requests the stack refuses as malformed before sippy's transaction layer
or our own handlers read them.

sippy parses a header's value lazily, the first time someone asks for it, and its parsers
fail with whatever the input provokes (an RFC 4475 "quotbal" To with an unterminated quote
raises UnboundLocalError). Left alone, that exception surfaces wherever the header happens
to be read first: in our `_on_request`, in a dialog's `isYours()`, in `sendResponse()` as
it adds a To tag. No answer goes out, the transaction is left behind and a traceback is
logged per datagram. Reading every header that is read later, once, up front, turns all of
those into one decision: answer 400 naming the header, or (for an ACK) stay silent.

sippy itself reads Via, From, Call-ID and CSeq (it needs them to find the transaction)
before a request gets to the stack; when one of those fails, patch 7 in `patches` asks this
module which one and answers the same 400 (or nothing, for a Via: there is no one to answer).
They are checked here again anyway (a no-op for a parsed header) so this module states the
whole list on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (sippy's header name, the name used in the 400's reason phrase). Everything a request
# outside a dialog, or inside one of our dialogs, has read from it by sippy or by us.
_HEADERS_READ = (
    ("via", "Via"),
    ("from", "From"),
    ("to", "To"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("contact", "Contact"),
    ("max-forwards", "Max-Forwards"),
)
# The To tag and From tag decide which dialog a request belongs to.
_TAGGED = frozenset({"from", "to"})
_DETAIL_MAX_CHARS = 120


@dataclass(frozen=True, slots=True)
class MalformedHeader:
    """A request header that cannot be read; the request gets a 400 (or, an ACK, nothing)."""

    header: str  # as in the reason phrase, e.g. "To"
    detail: str  # what the parser said, short, for the log

    @property
    def reason(self) -> str:
        """The 400's reason phrase: short and naming the header, per RFC 3261 21.4.1."""
        return f"Bad {self.header} Header"


def find_malformed_header(request: Any) -> MalformedHeader | None:
    """The first header of `request` (a sippy SipRequest) that does not parse, or None.

    Parses each header CallNow or sippy reads later, so nothing downstream can fail on one.
    """
    for name, display in _HEADERS_READ:
        for header in request.getHFs(name):
            try:
                body = header.getBody()
                if name in _TAGGED:
                    body.getTag()
            except Exception as exc:  # sippy's parsers raise anything (IndexError, ...)
                return MalformedHeader(display, _summary(exc))
    return None


def _summary(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:_DETAIL_MAX_CHARS]
