"""The embeddable button's web side: the script a site includes, and the headers that let only
the owner's sites frame the embed variant of the public page (`?embed=1`)."""

from __future__ import annotations

import json
from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import quote

from callnow.domain.embed import DEFAULT_LABEL, EmbedSettings, frame_ancestors
from callnow.i18n import gettext as _
from callnow.web.middleware import content_security_policy

EMBED_QUERY = "embed"
_SCRIPT = Path(__file__).parent / "templates" / "public" / "embed_button.js"
_CONFIG_MARK = "/*CONFIG*/null"


def frame_headers(embed: EmbedSettings) -> dict[str, str]:
    """Only these sites (and CallNow itself) may frame the page; every other answer keeps
    `frame-ancestors 'none'` from the middleware."""
    return {
        "Content-Security-Policy": content_security_policy(frame_ancestors(embed.origins)).decode()
    }


def page_path(callnow_id: str) -> str:
    return f"/callnow/{quote(callnow_id)}"


def frame_path(callnow_id: str) -> str:
    return f"{page_path(callnow_id)}?{EMBED_QUERY}=1"


@cache
def _script_source() -> str:
    source = _SCRIPT.read_text(encoding="utf-8")
    assert _CONFIG_MARK in source
    return source


def button_script(callnow_id: str, embed: EmbedSettings) -> str:
    """The page's button script with its settings inside, so an owner's later change of label,
    colour or sites applies without pasting the snippet again. The words the owner did not
    choose (the default label, Close, the frame's title) are in the language now in use."""
    # The owner's own label stays as they wrote it; the default speaks the visitor's language.
    label = _("Call me back") if embed.label == DEFAULT_LABEL else embed.label
    config = {
        "id": callnow_id,
        "page": page_path(callnow_id),
        "frame": frame_path(callnow_id),
        "label": label,
        "close": _("Close"),
        "frameTitle": _("%(label)s: the call back form") % {"label": label},
        "colour": embed.colour,
        "text": embed.text_colour,
        "position": embed.position,
        "origins": list(embed.origins),
    }
    # JSON is valid JavaScript; "<" escaped so the text is inert even if pasted inline.
    literal = json.dumps(config).replace("<", "\\u003c")
    return _script_source().replace(_CONFIG_MARK, literal)


def snippet(base_url: str, callnow_id: str, label: str) -> str:
    """What the owner pastes: a plain link (it works without scripts or framing, in a new
    window) that the script turns into the button and the overlay."""
    base = base_url.rstrip("/")
    href = escape(f"{base}{page_path(callnow_id)}", quote=True)
    src = escape(f"{base}{page_path(callnow_id)}/embed.js", quote=True)
    return (
        f'<a href="{href}" data-callnow="{escape(callnow_id, quote=True)}" target="_blank" '
        f'rel="noopener">{escape(label)}</a>\n<script src="{src}" async></script>'
    )
