"""Turning caller-supplied values into SIP header material safely.

Display names come from a web form (the visitor types their name), so they are hostile until
proven otherwise: a quote, backslash or line break could end the quoted-string or the header
and inject new headers. The domain already normalises numbers and names; this module is the
second line of defence right where bytes are produced.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from sippy.SipAddress import SipAddress
from sippy.SipHeader import SipHeader
from sippy.SipURL import SipURL

NAME_MAX_CHARS = 64

_NUMBER = re.compile(r"\+?[0-9]{1,32}")
# A SIP URI without whitespace, quotes, angle brackets or backslashes (those belong to the
# header syntax around a URI, never inside one we build).
_SIP_URI = re.compile(r"sips?:[^\s\"<>\\]+", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
# Headers the stack builds itself; an extra header must not duplicate or override them.
_RESERVED_HEADERS = frozenset(
    {
        "via",
        "v",
        "from",
        "f",
        "to",
        "t",
        "call-id",
        "i",
        "cseq",
        "contact",
        "m",
        "content-length",
        "l",
        "content-type",
        "c",
        "max-forwards",
        "route",
        "record-route",
        "authorization",
        "proxy-authorization",
        "p-asserted-identity",
        "expires",
    }
)


class InvalidSipInput(ValueError):
    """A value handed to the SIP adapter could not be made safe; nothing was sent."""


def clean_display_name(name: str) -> str:
    """Return `name` safe inside a quoted-string: no quotes, backslashes or control chars.

    Control/format characters and odd separators (CR, LF, NUL, U+2028, ...) become spaces,
    runs of spaces collapse, and the result is cut to NAME_MAX_CHARS characters.
    """
    out = []
    for ch in name:
        category = unicodedata.category(ch)
        # Quotes and backslashes would end or escape the quoted-string; control, format and
        # separator characters (CR, LF, NUL, U+2028, ...) could end the header line.
        if ch in '"\\' or category[0] in "CZ":
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())[:NAME_MAX_CHARS].strip()


def check_number(number: str, what: str = "number") -> str:
    """Accept only digits with an optional leading '+' (a SIP URI user part we control)."""
    if not isinstance(number, str) or not _NUMBER.fullmatch(number):
        raise InvalidSipInput(f"{what} must be digits with an optional leading '+': {number!r}")
    return number


def parse_request_uri(uri: str) -> SipURL:
    """Parse the request URI built by the caller; its user part must be a number."""
    if not isinstance(uri, str) or not _SIP_URI.fullmatch(uri):
        raise InvalidSipInput(f"not a SIP URI we can send to: {uri!r}")
    try:
        url = SipURL(uri)
    except Exception as exc:  # sippy raises assorted errors on bad URIs
        raise InvalidSipInput(f"unparseable SIP URI {uri!r}: {exc}") from exc
    if not url.host:
        raise InvalidSipInput(f"SIP URI without a host: {uri!r}")
    check_number(url.username or "", "request URI user part")
    return url


def build_extra_headers(headers: Mapping[str, str] | None) -> tuple[SipHeader, ...]:
    """Validate extra headers (token name, single-line value, not one the stack owns)."""
    if not headers:
        return ()
    built = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise InvalidSipInput(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidSipInput(f"header {name!r} is set by the SIP stack itself")
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
            raise InvalidSipInput(f"header {name!r} value must be a single line")
        built.append(SipHeader(name=name, bodys=value))
    return tuple(built)


class QuotedNameAddress(SipAddress):
    """A name-addr whose display name is always a quoted-string.

    sippy quotes a display name only when it has non-alphanumeric characters, and Unicode
    letters count as alphanumeric, so `Mária <sip:...>` would go out unquoted (not a valid
    token). Names we send are always cleaned and always quoted.
    """

    def localStr(self, local_addr: object = None) -> str:
        name = clean_display_name(self.name or "")
        rendered = f'"{name}" ' if name else ""
        rendered += "<" + self.url.localStr(local_addr) + ">"
        for key in self.params_order:
            value = self.params[key]
            rendered += f";{key}" if value is None else f";{key}={value}"
        return rendered

    def getCopy(self) -> QuotedNameAddress:
        return QuotedNameAddress(
            name=self.name,
            url=self.url.getCopy(),
            params=self.params.copy(),
            hadbrace=True,
            params_order=self.params_order[:],
        )


@dataclass(frozen=True, slots=True)
class CallerId:
    """Who a call appears to come from: display name (may be empty) and number."""

    name: str
    number: str

    def __post_init__(self) -> None:
        check_number(self.number, "caller number")
        object.__setattr__(self, "name", clean_display_name(self.name))


@dataclass(frozen=True, slots=True)
class Credentials:
    """Digest credentials for 401/407 challenges (one attempt; never retried in a loop)."""

    username: str
    password: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"
