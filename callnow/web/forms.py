"""Signed form tokens (CSRF) and small helpers for reading bounded form fields."""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData

FORM_TOKEN_MAX_AGE_S = 2 * 3600
MAX_FIELD_CHARS = 2000
# Tokens whose signature was checked, kept with what they say: a flood posts one page's token
# over and over, and each check derived the key and computed two HMACs again.
CHECKED_TOKENS_KEPT = 4096


class FormTokens:
    """A public form carries a token signed for its page; the portal one is tied to the session."""

    def __init__(self, secret_key: str) -> None:
        self._signer = _serializer(secret_key)

    def issue(self, purpose: str) -> str:
        return self._signer.dumps({"p": purpose, "n": secrets.token_hex(4)})

    def valid(self, token: str | None, purpose: str) -> bool:
        if not token or len(token) > 300:
            return False
        signed = _signed(self._signer, token)
        if signed is None:
            return False
        data, signed_at = signed
        # As the serializer's own max_age: neither expired nor signed in the future.
        if not 0 <= time.time() - signed_at <= FORM_TOKEN_MAX_AGE_S:
            return False
        return isinstance(data, dict) and data.get("p") == purpose


@lru_cache(maxsize=8)
def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    """One serializer per key, so that checked tokens are kept across requests."""
    return URLSafeTimedSerializer(secret_key, salt="callnow-form")


@lru_cache(maxsize=CHECKED_TOKENS_KEPT)
def _signed(signer: URLSafeTimedSerializer, token: str) -> tuple[Any, int] | None:
    """What `token` says and when it was signed (Unix time), if its signature is good."""
    try:
        data, signed_at = signer.loads(token, return_timestamp=True)
    except BadSignature:
        return None
    return data, int(signed_at.timestamp())


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
