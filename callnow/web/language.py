"""Which language a visitor reads, and the switch that lets them choose another.

In order: a language the visitor just chose (the switch's button or `?lang=`), the one they
chose before (cookie `callnow_lang`), else the first of their browser's languages the page
offers, else the page's default. Only languages the page offers are ever used. The Call API
never comes here: it stays English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from callnow.i18n import (
    DEFAULT_LANGUAGE,
    ENDONYMS,
    SHIPPED,
    negotiate,
    offered_languages,
    set_language,
)
from callnow.store.models import Profile

COOKIE = "callnow_lang"
QUERY = "lang"
# The switch's buttons submit the form they belong to under this name: the page comes back in
# the chosen language with what was typed, and nothing is sent.
SWITCH_FIELD = "switch_language"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


@dataclass(frozen=True)
class Choice:
    language: str
    offered: tuple[str, ...]
    chosen_now: bool  # the visitor picked it in this request: remember it

    def options(self, path: str, embedded: bool = False) -> list[Option]:
        """The switch: each offered language named in itself, with a link to `path` in it."""
        if len(self.offered) < 2:
            return []
        kept = [("embed", "1")] if embedded else []
        return [
            Option(
                code,
                ENDONYMS[code],
                f"{path}?{urlencode([*kept, (QUERY, code)])}",
                code == self.language,
            )
            for code in self.offered
        ]


@dataclass(frozen=True)
class Option:
    code: str
    name: str
    href: str
    current: bool


def _offered(profile: Profile | None) -> tuple[tuple[str, ...], str]:
    if profile is None:
        return SHIPPED, DEFAULT_LANGUAGE
    return offered_languages(profile.languages or ""), profile.default_language or ""


def choose(
    request: Request,
    profile: Profile | None,
    *,
    switched: str | None = None,
    posted: str | None = None,
) -> Choice:
    """Choose the visitor's language for `profile`'s pages and speak it from now on.

    `switched` is a language the visitor just picked with the switch; `posted` the language the
    form they sent was shown in (its hidden `lang` field)."""
    offered, default = _offered(profile)
    for candidate, explicit in (
        (switched, True),
        (request.query_params.get(QUERY), True),
        (posted, False),
        (request.cookies.get(COOKIE), False),
    ):
        code = (candidate or "").strip().lower()
        if code in offered:
            return Choice(set_language(code), offered, explicit)
    accept = request.headers.get("accept-language")
    return Choice(set_language(negotiate(accept, offered, default)), offered, False)


def browser_language(request: Request, profile: Profile | None) -> str:
    """What the browser's languages alone would give (nothing chosen, nothing remembered)."""
    offered, default = _offered(profile)
    return negotiate(request.headers.get("accept-language"), offered, default)


R = TypeVar("R", bound=Response)


def remember(response: R, choice: Choice) -> R:
    """Keep a choice the visitor made for their next pages (and tell caches what the page's
    language depended on)."""
    response.headers.add_vary_header("Accept-Language")
    response.headers.add_vary_header("Cookie")
    if choice.chosen_now:
        response.set_cookie(
            COOKIE,
            choice.language,
            max_age=COOKIE_MAX_AGE_S,
            path="/callnow",
            httponly=True,
            samesite="lax",
        )
    return response
