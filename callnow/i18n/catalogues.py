"""The words of each language, read from the `.po` files, and the language now in use.

The language in use is a context variable: a route (or the mail worker, or the engine rendering
a prompt) chooses it with `use_language`, and every `gettext` in that context, templates
included, answers in it. Outside any choice it is English, the source language.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from gettext import NullTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment

from callnow.i18n.languages import DEFAULT_LANGUAGE, SHIPPED, text_direction

LOCALE_DIR = Path(__file__).parent / "locale"

_active: ContextVar[str] = ContextVar("callnow_language", default=DEFAULT_LANGUAGE)


def catalogue_files(language: str) -> list[Path]:
    return sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po"))


@cache
def translations(language: str) -> NullTranslations:
    """Every `.po` file of `language` as one catalogue (fuzzy entries left out)."""
    merged: NullTranslations = NullTranslations()
    for path in catalogue_files(language):
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = Translations(compiled)
        if isinstance(merged, Translations):
            merged.merge(part)
        else:
            merged = part
    return merged


def active_language() -> str:
    return _active.get()


@contextmanager
def use_language(language: str) -> Iterator[str]:
    """Speak `language` (English when it is not shipped) until the block ends."""
    chosen = language if language in SHIPPED else DEFAULT_LANGUAGE
    token = _active.set(chosen)
    try:
        yield chosen
    finally:
        _active.reset(token)


def set_language(language: str) -> str:
    """Speak `language` for the rest of this context (one web request's task)."""
    chosen = language if language in SHIPPED else DEFAULT_LANGUAGE
    _active.set(chosen)
    return chosen


def gettext(message: str) -> str:
    return translations(_active.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations(_active.get()).ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    return translations(_active.get()).pgettext(context, message)


def N_(message: str) -> str:
    """Marks `message` for extraction and returns it unchanged: for tables built at import
    time, translated with `gettext` where they are shown."""
    return message


def install_in_jinja(env: Environment) -> None:
    """`{% trans %}`, `_()`, `ngettext()` and the page's `lang`/`dir` in every template."""
    env.add_extension("jinja2.ext.i18n")
    # `{% trans %}` blocks lose their line breaks and indentation, as the extraction configs
    # (`trimmed = true`) do, so a template can wrap a long sentence.
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=gettext, ngettext=ngettext, pgettext=pgettext, newstyle=True
    )
    env.globals["current_language"] = active_language
    env.globals["text_direction"] = lambda: text_direction(_active.get())
