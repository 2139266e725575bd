"""The owner's e-mail choices (which notices, pause) and password reset by e-mail.

The reset routes sit beside the login (`/portal/reset…`) without changing it. Asking for a reset
answers the same whether or not the address has an account, and is throttled per address and
per network.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from limits import parse_many
from sqlalchemy.orm import Session

from callnow.domain.notices import CHOOSABLE, LABELS
from callnow.i18n import N_
from callnow.i18n import gettext as _
from callnow.services.throttle import Throttle
from callnow.store import accounts, audit, password_reset
from callnow.store import mail as mail_store
from callnow.store.models import User, utcnow
from callnow.web import forms
from callnow.web.context import UnitOfWork, app_state, client_address
from callnow.web.owner_language import negotiated_language
from callnow.web.portal import _checked_form, _render, _to_login, current_user

router = APIRouter(
    prefix="/portal", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)


# ---------------------------------------------------------------- preferences


def _prefs_page(request: Request, user: User, prefs: mail_store.Prefs, **extra: object) -> Response:
    return _render(
        request,
        "notifications.html",
        user,
        kinds=[(k.value, _(LABELS[k]), k in prefs.kinds) for k in CHOOSABLE],
        paused=prefs.paused,
        mail_on=app_state(request).settings.mail.enabled,
        **extra,
    )


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _prefs_page(request, user, mail_store.prefs_of(session, user.id), saved=False)


@router.post("/notifications", response_class=HTMLResponse)
def save_notifications(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    form = _checked_form(request, posted)
    if form is None:
        prefs = mail_store.prefs_of(session, user.id)
        return _prefs_page(
            request,
            user,
            prefs,
            saved=False,
            error=_("The form expired; please try again."),
            status_code=400,
        )
    chosen = {k for k in CHOOSABLE if forms.checkbox(form, f"kind_{k.value}")}
    paused = forms.checkbox(form, "paused")
    mail_store.set_prefs(session, user.id, paused=paused, kinds=chosen)
    audit.record(
        session,
        actor=user,
        action="notifications.update",
        subject=user.email,
        tenant_id=user.tenant_id,
        via="portal",
        details={"paused": paused, "kinds": sorted(k.value for k in chosen)},
    )
    return _prefs_page(request, user, mail_store.prefs_of(session, user.id), saved=True)


# ---------------------------------------------------------------- password reset

SENT = N_(
    "If an account exists for that address, we have sent it a link to choose a new password. "
    "The link works once, for %(minutes)d minutes."
)
BAD_TOKEN = N_("This reset link is not valid: it was used, it expired or it was mistyped.")


class ResetThrottle:
    """Counts reset asks per account and per network, in the same counters as every other
    limit (the database by default, so a restart forgets nothing)."""

    def __init__(self, throttle: Throttle, per_account: str, per_source: str) -> None:
        self._throttle = throttle
        self._per_account = parse_many(per_account)
        self._per_source = parse_many(per_source)

    def allow(self, account: str, source: str, session: Session) -> bool:
        checks = [
            ("reset_per_account", account.strip().lower(), self._per_account),
            ("reset_per_source", source, self._per_source),
        ]
        return self._throttle.take_extra(checks, session)


def _throttle(request: Request) -> ResetThrottle:
    found = getattr(request.app.state, "reset_throttle", None)
    if found is None:
        state = app_state(request)
        found = ResetThrottle(
            state.safeguards.throttle,
            state.settings.mail.reset_per_account,
            state.settings.mail.reset_per_source,
        )
        request.app.state.reset_throttle = found
    return found


def _minutes(request: Request) -> int:
    return app_state(request).settings.mail.reset_token_s // 60


@router.get("/reset", response_class=HTMLResponse)
def reset_ask_page(request: Request, session: UnitOfWork) -> Response:
    return _render(request, "reset_ask.html", None, message=None, error=None, email="")


@router.post("/reset", response_class=HTMLResponse)
def reset_ask(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    form = _checked_form(request, posted)
    email = forms.field(form or posted, "email", 254).strip()
    if form is None:
        return _render(
            request,
            "reset_ask.html",
            None,
            message=None,
            email=email,
            error=_("The form expired; please try again."),
            status_code=400,
        )
    if not email or "@" not in email:
        return _render(
            request,
            "reset_ask.html",
            None,
            message=None,
            email=email,
            error=_("Please enter the e-mail address of your account."),
            status_code=422,
        )
    if not _throttle(request).allow(email, client_address(request), session):
        return _render(
            request,
            "reset_ask.html",
            None,
            message=None,
            email=email,
            status_code=429,
            error=_("Too many reset requests. Please wait an hour and try again."),
        )
    valid_for = timedelta(seconds=app_state(request).settings.mail.reset_token_s)
    password_reset.request_reset(session, email, utcnow(), valid_for)
    return _render(
        request,
        "reset_ask.html",
        None,
        error=None,
        email=email,
        message=_(SENT) % {"minutes": _minutes(request)},
    )


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_page(request: Request, token: str, session: UnitOfWork) -> Response:
    if not password_reset.is_valid(session, token, utcnow()):
        return _render(
            request, "reset_choose.html", None, token=None, error=_(BAD_TOKEN), status_code=404
        )
    return _render(request, "reset_choose.html", None, token=token, error=None)


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset(request: Request, token: str, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    # A link that is not valid is refused first, whoever posts it.
    if not password_reset.is_valid(session, token, utcnow()):
        return _render(
            request, "reset_choose.html", None, token=None, error=_(BAD_TOKEN), status_code=404
        )
    form = _checked_form(request, posted)
    if form is None:
        return _render(
            request,
            "reset_choose.html",
            None,
            token=token,
            error=_("The form expired; please try again."),
            status_code=400,
        )
    password = forms.field(form, "password", 257)
    if password != forms.field(form, "password_again", 257):
        return _render(
            request,
            "reset_choose.html",
            None,
            token=token,
            error=_("The two passwords differ."),
            status_code=422,
        )
    try:
        user = password_reset.reset_password(session, token, password, utcnow())
    except accounts.WeakPassword as exc:
        return _render(
            request, "reset_choose.html", None, token=token, error=str(exc), status_code=422
        )
    if user is None:
        return _render(
            request, "reset_choose.html", None, token=None, error=_(BAD_TOKEN), status_code=404
        )
    audit.record(
        session,
        actor=user,
        action="password.reset",
        subject=user.email,
        tenant_id=user.tenant_id,
        via="portal",
    )
    return RedirectResponse("/portal/login?reset=1", status_code=303)
