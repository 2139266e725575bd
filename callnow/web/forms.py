"""Signed form tokens (CSRF) and small helpers for reading bounded form fields."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData

FORM_TOKEN_MAX_AGE_S = 2 * 3600
MAX_FIELD_CHARS = 2000


class FormTokens:
    """A public form carries a token signed for its page; the portal one is tied to the session."""

    def __init__(self, secret_key: str) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="callnow-form")

    def issue(self, purpose: str) -> str:
        return self._signer.dumps({"p": purpose, "n": secrets.token_hex(4)})

    def valid(self, token: str | None, purpose: str) -> bool:
        if not token or len(token) > 300:
            return False
        try:
            data = self._signer.loads(token, max_age=FORM_TOKEN_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(data, dict) and data.get("p") == purpose


def field(form: FormData, name: str, max_chars: int = MAX_FIELD_CHARS) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value[:max_chars]


def checkbox(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop so the route itself can be a plain `def`.

    Routes that touch the database are plain functions: FastAPI runs them in a worker thread,
    so a database that makes a writer wait (SQLite's lock) never stalls the event loop, the
    engine and every other request with it.
    """
    return await request.form(max_files=0, max_fields=200)


PostedForm = Annotated[FormData, Depends(posted_form)]
