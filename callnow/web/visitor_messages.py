"""The status page's message form: a visitor whose call could not happen writes to the owner.

Only HTTP here; `services/messages.py` decides and writes."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from callnow.domain.left_message import MAX_CHARS
from callnow.i18n import gettext as _
from callnow.services import messages, public_page
from callnow.services.intake import Submission
from callnow.services.public_page import CaptchaAnswer
from callnow.store import requests as request_store
from callnow.web import forms, language
from callnow.web.context import UnitOfWork, app_state, client_address
from callnow.web.public import (
    captcha_wrong,
    form_expired,
    not_available,
    page_again,
    status_page,
    status_url_for,
)
from callnow.web.public import throttled as throttled_page

router = APIRouter(include_in_schema=False)

# Room for line endings counted twice and a few over the limit, so the visitor is told the
# length they wrote; the middleware bounds the whole body anyway.
_FIELD_CHARS = 2 * MAX_CHARS + 100

_STATUS = {
    messages.Refusal.NOT_NOW: 409,
    messages.Refusal.ALREADY: 409,
    messages.Refusal.INVALID: 422,
}


def _purpose(token: str) -> str:
    return f"message:{token}"


def message_form_token(request: Request, token: str) -> str:
    """A signed token for the status page's message form, bound to this request."""
    return forms.FormTokens(app_state(request).settings.web.secret_key).issue(_purpose(token))


@router.post("/callnow/{callnow_id}/requests/{token}/message")
def leave_message(
    request: Request, callnow_id: str, token: str, form: forms.PostedForm, session: UnitOfWork
) -> Response:
    return _leave(request, session, callnow_id, token, form)


def _leave(
    request: Request, session: Session, callnow_id: str, token: str, form: FormData
) -> Response:
    call_request = request_store.by_token(session, token)
    if call_request is None or call_request.profile.callnow_id != callnow_id.lower():
        return not_available(request)
    text = forms.field(form, "message", _FIELD_CHARS)
    switch = forms.field(form, language.SWITCH_FIELD, 8)
    if switch:  # the language switch: the page again in that language, the text kept
        choice = language.choose(request, call_request.profile, switched=switch)
        return status_page(request, call_request, message_value=text, choice=choice)
    choice = language.choose(request, call_request.profile, posted=forms.field(form, "lang", 8))
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    if not tokens.valid(forms.field(form, "form_token", 300), _purpose(token)):
        error = _("This form has expired. Please send your message again.")
        return status_page(
            request,
            call_request,
            message_error=error,
            message_value=text,
            status_code=400,
            choice=choice,
        )
    outcome = messages.leave_message(
        session,
        call_request,
        text,
        client_address(request),
        datetime.now(UTC),
        app_state(request).safeguards.throttle,
    )
    if outcome.refusal is messages.Refusal.THROTTLED:
        headers = {"Retry-After": "60"}
        return throttled_page(request, call_request.profile, headers, choice.language)
    if outcome.refusal is not None:
        return status_page(
            request,
            call_request,
            message_error=outcome.error,
            message_value=text if outcome.refusal is messages.Refusal.INVALID else "",
            status_code=_STATUS[outcome.refusal],
            choice=choice,
        )
    url = f"/callnow/{call_request.profile.callnow_id}/requests/{token}#message"
    return RedirectResponse(url, status_code=303)


def _closed_errors(refusal: messages.Refusal | None) -> tuple[int, dict[str, str]] | None:
    if refusal is messages.Refusal.CAPTCHA_WRONG:
        return 400, {"captcha": captcha_wrong()}
    if refusal is messages.Refusal.OPEN:
        return 409, {"form": _("The page takes requests again: ask for a call back.")}
    return None


@router.post("/callnow/{callnow_id}/message")
def leave_closed_message(
    request: Request, callnow_id: str, form: forms.PostedForm, session: UnitOfWork
) -> Response:
    return _leave_closed(request, session, callnow_id, form)


def _leave_closed(request: Request, session: Session, callnow_id: str, form: FormData) -> Response:
    """The out-of-hours page's message: name, number and text, kept on a request of its own."""
    now = datetime.now(UTC)
    profile = public_page.visible_page(session, callnow_id, now, app_state(request).pages)
    if profile is None:
        return not_available(request)
    values = {
        "name": forms.field(form, "name", 200),
        "number": forms.field(form, "number", 100),
        "message": forms.field(form, "message", _FIELD_CHARS),
    }
    switch = forms.field(form, language.SWITCH_FIELD, 8)
    if switch:  # the language switch: the page again in that language, what was typed kept
        choice = language.choose(request, profile, switched=switch)
        return page_again(
            request, session, profile, values=values, errors={}, status_code=200, choice=choice
        )
    choice = language.choose(request, profile, posted=forms.field(form, "lang", 8))
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    if not tokens.valid(forms.field(form, "form_token", 300), _purpose(f"page:{profile.id}")):
        errors = {"form": form_expired()}
        return page_again(
            request,
            session,
            profile,
            values=values,
            errors=errors,
            status_code=400,
            choice=choice,
        )
    submission = Submission(
        name=values["name"],
        number=values["number"],
        source_address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:256],
        channel="web",
    )
    captcha = CaptchaAnswer(
        forms.field(form, "captcha_token", 64), forms.field(form, "captcha_answer", 20)
    )
    safeguards = app_state(request).safeguards
    outcome = messages.leave_out_of_hours(
        session, profile, submission, values["message"], now, safeguards, captcha
    )
    if outcome.request is not None:
        url = status_url_for(request, profile, outcome.request, choice) + "#message"
        return RedirectResponse(url, status_code=303)
    if outcome.refusal is messages.Refusal.THROTTLED:
        return throttled_page(request, profile, {"Retry-After": "60"}, choice.language)
    status_code, errors = _closed_errors(outcome.refusal) or (422, outcome.errors)
    return page_again(
        request,
        session,
        profile,
        values=values,
        errors=errors,
        status_code=status_code,
        choice=choice,
    )
