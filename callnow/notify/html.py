"""The HTML part of an owner's mail: the same words as its plain text, links as buttons.

Most owners read these mails on a phone. In plain text a signed answer link is a long line of
characters to aim at; here it is a button that says what it does. Everything that came from
outside (a visitor's name, a message) is escaped: it is text, never markup. Styles are inline,
as mail programs drop style sheets, and the page fits a narrow screen without sideways
scrolling (long addresses wrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from callnow.i18n import active_language, text_direction


@dataclass(frozen=True)
class Line:
    """One paragraph of a mail: `text` as the plain-text part says it, the link written out.

    `label`: the HTML part shows the line as a button with these words, not the address."""

    text: str
    link: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Section:
    """A part of a digest: one notice under its own heading."""

    heading: str
    lines: Sequence[Line]


def linked(words: str, link: str, *, button: bool = False) -> Line:
    """A line from translated `words` with a `%(link)s` placeholder. As a button, the words
    without the link are its label, when the link ends them (a language may put it elsewhere:
    then the line keeps its words and the link shows inline)."""
    label = None
    if button and words.rstrip().endswith("%(link)s"):
        label = (words % {"link": ""}).rstrip().rstrip(":：").rstrip() or None
    return Line(words % {"link": link}, link, label)


_BODY = (
    "margin:0;padding:16px;background:#ffffff;color:#1a1a1a;"
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "font-size:16px;line-height:1.5"
)
_PARAGRAPH = "margin:0 0 16px"
_BUTTON = (
    "display:inline-block;padding:10px 18px;border-radius:6px;background:#0b57d0;"
    "color:#ffffff;font-weight:600;text-decoration:none"
)
_INLINE_LINK = "color:#0b57d0;overflow-wrap:anywhere;word-break:break-word"
_FOOTER = (
    "margin-top:32px;padding-top:16px;border-top:1px solid #c4c4c4;font-size:14px;color:#4a4a4a"
)


def document(title: str, lines: Sequence[Line], sections: Sequence[Section], footer: Line) -> str:
    """The whole HTML part: `title` as its heading, `lines`, then `sections`, then `footer`; in
    the active language and its writing direction."""
    language = active_language()
    parts = [
        Markup('<!DOCTYPE html>\n<html lang="{}" dir="{}">').format(
            language, text_direction(language)
        ),
        Markup(
            '<head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>{}</title></head>"
        ).format(title),
        Markup('<body style="{}"><main style="max-width:36rem;margin:0 auto">').format(_BODY),
        Markup('<h1 style="font-size:20px;line-height:1.3;margin:0 0 16px">{}</h1>').format(title),
        *(_paragraph(line) for line in lines),
    ]
    for section in sections:
        parts.append(
            Markup('<h2 style="font-size:18px;line-height:1.3;margin:24px 0 12px">{}</h2>').format(
                section.heading
            )
        )
        parts.extend(_paragraph(line) for line in section.lines)
    parts.append(Markup('<footer style="{}">{}</footer>').format(_FOOTER, _inline(footer)))
    parts.append(Markup("</main></body></html>\n"))
    return str(Markup("\n").join(parts))


def _paragraph(line: Line) -> Markup:
    if line.link is not None and line.label is not None:
        content = Markup('<a href="{}" style="{}">{}</a>').format(line.link, _BUTTON, line.label)
    else:
        content = _inline(line)
    return Markup('<p style="{}">{}</p>').format(_PARAGRAPH, content)


def _inline(line: Line) -> Markup:
    """The line's words with its link, where they write it out, as a link."""
    words = escape(line.text)
    if line.link is None:
        return words
    address = escape(line.link)
    anchor = Markup('<a href="{}" style="{}">{}</a>').format(line.link, _INLINE_LINK, line.link)
    if address in words:
        return Markup(words.replace(address, anchor))
    return Markup("{} {}").format(words, anchor)
