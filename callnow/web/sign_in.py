"""Logins and server-side sessions, shared by the owner portal and the platform admin.

The browser's session cookie holds only a random token; the database holds its hash, the user,
and when it was made and last seen, so logging out (or an admin, or a password change) ends it
for every copy of the cookie. Before login, a separate random nonce cookie binds the login
form's CSRF token to the browser.

A login passes three gates (`domain.sign_in.login_gate`): attempts per address, failures per
account from the attempt's network, and failures per account overall. While an account is under
attack, networks its user has logged in from before get a CAPTCHA instead of a 429.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from callnow.config import Settings
from callnow.domain.sign_in import Lifetimes, LoginGate, login_gate
from callnow.i18n import N_
from callnow.i18n import gettext as _
from callnow.services.throttle import source_network
from callnow.store import accounts, web_sessions
from callnow.store.models import User
from callnow.store.session_models import WebSession
from callnow.web.context import AppState

# Login CAPTCHA challenges use the CAPTCHA book with this profile number (no page has it).
LOGIN_CAPTCHA_PROFILE = 0
NONCE_CHARS = 32
USER_AGENT_CHARS = 200


def lifetimes(settings: Settings) -> Lifetimes:
    return Lifetimes(
        idle=timedelta(seconds=settings.web.session_idle_s),
        absolute=timedelta(seconds=settings.web.session_absolute_s),
    )


def _secure(settings: Settings) -> bool:
    return settings.web.public_base_url.startswith("https://")


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, *, path: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
    )


def clear_cookie(response: Response, settings: Settings, name: str, *, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=_secure(settings))


def cookie_nonce(value: str | None) -> str | None:
    """A login nonce cookie's value if it looks like one of ours."""
    if value and len(value) == NONCE_CHARS and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def new_nonce() -> str:
    return secrets.token_hex(NONCE_CHARS // 2)


def start_session(
    session: Session,
    user: User,
    realm: web_sessions.Realm,
    request: Request,
    address: str,
    now: datetime,
) -> str:
    token, _row = web_sessions.start(
        session,
        user,
        realm,
        user_agent=request.headers.get("user-agent", "")[:USER_AGENT_CHARS],
        network=source_network(address),
        now=now,
    )
    return token


def find_session(
    state: AppState, session: Session, token: str | None, realm: web_sessions.Realm, now: datetime
) -> WebSession | None:
    if not token:
        return None
    return web_sessions.find(session, token, realm, now, lifetimes(state.settings))


Outcome = Literal["ok", "wrong", "refused", "captcha"]


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: User | None = None
    # A CAPTCHA challenge the next try must answer (while the account is under attack).
    captcha_token: str | None = None
    message: str = ""


REFUSED = N_("Too many attempts. Please wait a few minutes and try again.")
WRONG = N_("That email and password do not match an account.")
CAPTCHA_FIRST = N_(
    "Many wrong passwords were tried for this account recently. To go on, type the digits "
    "shown in the picture."
)
CAPTCHA_WRONG = N_("Those were not the digits shown. Please try the new picture.")


def attempt_login(
    state: AppState,
    session: Session,
    *,
    email: str,
    password: str,
    address: str,
    captcha_token: str,
    captcha_answer: str,
    may_enter: Literal["anyone", "platform_admin"],
    now: datetime,
) -> Attempt:
    throttle = state.safeguards.throttle
    book = state.safeguards.captcha
    # Counted in this session: on SQLite a second writer of our own would wait for this one.
    if not throttle.login_source(address, session):
        return Attempt("refused", message=_(REFUSED))
    network_over, under_attack = throttle.login_pressure(email, address, session)
    known = False
    if under_attack and not network_over:
        owner = accounts.by_email(session, email)
        known = owner is not None and source_network(address) in web_sessions.known_networks(
            session, owner.id
        )
    gate = login_gate(
        network_over_limit=network_over, account_under_attack=under_attack, known_network=known
    )
    if gate is LoginGate.REFUSED:
        return Attempt("refused", message=_(REFUSED))
    if gate is LoginGate.CAPTCHA:
        if not captcha_token:
            challenge = book.issue(LOGIN_CAPTCHA_PROFILE, now)
            return Attempt("captcha", captcha_token=challenge, message=_(CAPTCHA_FIRST))
        if not book.verify(session, captcha_token, captcha_answer, LOGIN_CAPTCHA_PROFILE, now):
            throttle.login_failed(email, address, session)
            challenge = book.issue(LOGIN_CAPTCHA_PROFILE, now)
            return Attempt("captcha", captcha_token=challenge, message=_(CAPTCHA_WRONG))
    user = accounts.authenticate(session, email, password)
    if user is None or (may_enter == "platform_admin" and user.role != "platform_admin"):
        throttle.login_failed(email, address, session)
        again = book.issue(LOGIN_CAPTCHA_PROFILE, now) if gate is LoginGate.CAPTCHA else None
        return Attempt("wrong", captcha_token=again, message=_(WRONG))
    return Attempt("ok", user=user)
