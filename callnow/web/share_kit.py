"""The owner's sharing kit: the page's QR code in print sizes and an e-mail signature button.

Print sizes are physical: a business card carries a code about 25 mm wide, a poster about 200
mm; PNGs are rendered for 300 dpi printing so neither looks blurred.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from html import escape

import segno

from callnow.i18n import gettext as _


@dataclass(frozen=True)
class PrintSize:
    label: str
    width_mm: float


SIZES = {
    "card": PrintSize("business card (25 mm)", 25),
    "poster": PrintSize("poster (200 mm)", 200),
}
KINDS = {"svg": "image/svg+xml", "png": "image/png"}
PRINT_DPI = 300
_MM_PER_INCH = 25.4
QR_BORDER = 4  # modules of quiet zone the QR standard asks for


def qr_file(url: str, kind: str, size: str) -> bytes:
    """The QR code of `url` as an SVG (in millimetres) or a 300-dpi PNG of the given size."""
    code = segno.make(url, error="m")
    modules = code.symbol_size(scale=1, border=QR_BORDER)[0]
    width_mm = SIZES[size].width_mm
    out = io.BytesIO()
    if kind == "svg":
        code.save(
            out,
            kind="svg",
            unit="mm",
            scale=width_mm / modules,
            border=QR_BORDER,
            title=_("QR code for the CallNow page"),
        )
    else:
        pixels = round(width_mm / _MM_PER_INCH * PRINT_DPI)
        code.save(out, kind="png", scale=max(1, pixels // modules), border=QR_BORDER, dpi=PRINT_DPI)
    return out.getvalue()


def signature_label() -> str:
    """The signature button's words, in the owner's language (their mail's readers see it)."""
    return _("Call me back")


def signature_html(url: str, label: str | None = None) -> str:
    """A button-like link for e-mail signatures: a one-cell table with inline styles and a
    solid background, which Outlook, Gmail and Apple Mail all keep; the link itself stays
    underlined text where a client strips the styles."""
    href = escape(url, quote=True)
    text = escape(label or signature_label())
    return (
        '<table role="presentation" cellspacing="0" cellpadding="0" border="0"><tr>'
        '<td bgcolor="#0b62c4" style="border-radius:6px;background:#0b62c4;">'
        f'<a href="{href}" target="_blank" style="display:inline-block;padding:8px 16px;'
        "font-family:Arial,Helvetica,sans-serif;font-size:14px;font-weight:bold;"
        f'color:#ffffff;text-decoration:none;border-radius:6px;">{text}</a>'
        "</td></tr></table>"
    )


def signature_text(url: str, label: str | None = None) -> str:
    """The plain-text fallback for clients and recipients without HTML."""
    return _("%(label)s: %(url)s") % {"label": label or signature_label(), "url": url}
