"""The shipped languages and the choice among them (pure: no files, no settings)."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_LANGUAGE = "en"
# Codes are ISO 639-1; a region (pt-BR) is matched by its language alone.
SHIPPED: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "ja", "ar")
# Each language named in itself, as a language switch shows it.
ENDONYMS: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "pt": "Português",
    "nl": "Nederlands",
    "pl": "Polski",
    "ja": "日本語",
    "ar": "العربية",
}
RIGHT_TO_LEFT = frozenset({"ar"})

# An Accept-Language header longer than this, or with more entries, is read only so far.
MAX_HEADER_CHARS = 512
MAX_RANGES = 20


def text_direction(language: str) -> str:
    """`rtl` or `ltr`, for `<html dir=…>`."""
    return "rtl" if language in RIGHT_TO_LEFT else "ltr"


def offered_languages(stored: str) -> tuple[str, ...]:
    """A page's stored list ("de,en"; empty means every shipped language), shipped ones only."""
    codes = [code.strip().lower() for code in stored.split(",") if code.strip()]
    chosen = tuple(code for code in SHIPPED if code in codes)
    return chosen or SHIPPED


def _ranges(accept_language: str) -> list[tuple[float, int, str]]:
    """(quality, order, primary subtag) of each range, best first; malformed ranges skipped."""
    ranges: list[tuple[float, int, str]] = []
    parts = accept_language[:MAX_HEADER_CHARS].split(",")[:MAX_RANGES]
    for order, part in enumerate(parts):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if not primary or not (primary.isalpha() or primary == "*") or len(primary) > 8:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if 0 < quality <= 1:
            ranges.append((-quality, order, primary))
    ranges.sort()
    return [(-q, order, primary) for q, order, primary in ranges]


def negotiate(accept_language: str | None, offered: Iterable[str], default: str) -> str:
    """The first of the browser's languages that is offered, else `default` (if offered),
    else the first offered language."""
    choices = [code for code in offered if code in SHIPPED]
    if not choices:
        choices = [DEFAULT_LANGUAGE]
    fallback = default if default in choices else choices[0]
    for _quality, _order, primary in _ranges(accept_language or ""):
        if primary == "*":
            return fallback
        if primary in choices:
            return primary
    return fallback
