"""The embeddable button: which sites may frame an owner's page, and how the button looks.

An owner lists the origins (scheme, host, port) of the sites that may show their form in an
overlay; only those go into the embed variant's `frame-ancestors`. The button's text colour is
chosen here, never by the owner, so the label always meets WCAG AA contrast (4.5:1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callnow.i18n import gettext as _
from callnow.i18n import ngettext

MAX_ORIGINS = 10
MAX_ORIGIN_CHARS = 200
LABEL_MAX_CHARS = 40
DEFAULT_LABEL = "Call me back"
DEFAULT_COLOUR = "#0b62c4"
POSITIONS = ("bottom-right", "bottom-left", "inline")
DEFAULT_POSITION = "bottom-right"
WCAG_AA_TEXT = 4.5
_LIGHT_TEXT = "#ffffff"
_DARK_TEXT = "#000000"

# scheme://host[:port]: a DNS name or IPv4 address; no path, query, user or wildcard, so the
# value can go into a header as it is.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?/?"
)
_COLOUR = re.compile(r"#?([0-9a-f]{6}|[0-9a-f]{3})")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidEmbed(ValueError):
    """An embed setting that cannot be used; the message says why, for the owner."""


def parse_origin(text: str) -> str:
    """`https://shop.example.com` as a browser writes an origin, or InvalidEmbed."""
    value = text.strip().lower()
    shown = text.strip()[:60]
    if len(value) > MAX_ORIGIN_CHARS:
        raise InvalidEmbed(_("'%(text)s…' is too long for a site address.") % {"text": shown})
    match = _ORIGIN.fullmatch(value)
    if match is None:
        raise InvalidEmbed(
            _(
                "'%(text)s' is not a site address: write it as https://www.example.com "
                "(no path after the name)."
            )
            % {"text": shown}
        )
    scheme, host, port = match["scheme"], match["host"], match["port"]
    origin = f"{scheme}://{host}"
    if port is not None:
        number = int(port)
        if not 1 <= number <= 65535:
            raise InvalidEmbed(_("'%(text)s' has a port outside 1–65535.") % {"text": shown})
        if number != _DEFAULT_PORTS[scheme]:
            origin += f":{number}"
    return origin


def parse_origins(text: str) -> tuple[str, ...]:
    """One origin a line (or separated by spaces or commas), without repeats, in order."""
    origins: list[str] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        origin = parse_origin(part)
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise InvalidEmbed(
            ngettext(
                "At most %(most)d site may show your page.",
                "At most %(most)d sites may show your page.",
                MAX_ORIGINS,
            )
            % {"most": MAX_ORIGINS}
        )
    return tuple(origins)


def parse_label(text: str) -> str:
    label = " ".join(text.split())
    if not label:
        raise InvalidEmbed(_("The button needs a label, e.g. “Call me back”."))
    if len(label) > LABEL_MAX_CHARS:
        raise InvalidEmbed(
            ngettext(
                "The button's label is at most %(most)d character.",
                "The button's label is at most %(most)d characters.",
                LABEL_MAX_CHARS,
            )
            % {"most": LABEL_MAX_CHARS}
        )
    if any(not ch.isprintable() for ch in label):
        raise InvalidEmbed(_("The button's label may hold only printable characters."))
    return label


def parse_colour(text: str) -> str:
    """`#rrggbb`, from `#rgb` or `#rrggbb` (the `#` optional), or InvalidEmbed."""
    match = _COLOUR.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidEmbed(
            _("'%(text)s' is not a colour: write it as #0b62c4.") % {"text": text.strip()[:20]}
        )
    digits = match[1]
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return f"#{digits}"


def parse_position(text: str) -> str:
    value = text.strip().lower()
    if value not in POSITIONS:
        raise InvalidEmbed(
            _("The button's position is one of: %(positions)s.")
            % {"positions": ", ".join(POSITIONS)}
        )
    return value


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of `#rrggbb`."""
    channels = []
    for start in (1, 3, 5):
        c = int(colour[start : start + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_colour_for(background: str) -> str:
    """White or black, whichever reads better on `background`: the better of the two always
    reaches at least 4.58:1 (near-black would leave some blues at 4.3)."""
    light = contrast_ratio(background, _LIGHT_TEXT)
    dark = contrast_ratio(background, _DARK_TEXT)
    return _LIGHT_TEXT if light >= dark else _DARK_TEXT


@dataclass(frozen=True)
class EmbedSettings:
    origins: tuple[str, ...] = ()
    label: str = DEFAULT_LABEL
    colour: str = DEFAULT_COLOUR
    position: str = DEFAULT_POSITION

    @property
    def text_colour(self) -> str:
        return text_colour_for(self.colour)


def frame_ancestors(origins: tuple[str, ...]) -> str:
    """The CSP directive of the embed variant: CallNow itself (the portal's preview) and the
    owner's sites."""
    return " ".join(("frame-ancestors", "'self'", *origins))
