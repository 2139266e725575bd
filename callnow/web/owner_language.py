"""Which language the owner's pages speak.

Before sign-in (log in, password reset, a mailed answer link) the browser's Accept-Language
chooses among the shipped languages; once the owner is known, their own `users.language` wins
(see `portal.web_session`). The choice is a context variable (`callnow.i18n`), so the flash
messages a route builds and the template it renders speak the same language.
"""

from __future__ import annotations

from fastapi import Request

from callnow.i18n import DEFAULT_LANGUAGE, SHIPPED, negotiate, set_language


async def negotiated_language(request: Request) -> None:
    """A router dependency: the browser's language among the shipped ones. Async on purpose:
    it runs in the request's own task, so the sync route (run in a worker thread with a copy
    of this context) sees the choice."""
    set_language(negotiate(request.headers.get("accept-language"), SHIPPED, DEFAULT_LANGUAGE))


def speak_as_owner(language: str) -> None:
    """The signed-in owner's chosen language for the rest of this request."""
    set_language(language)
