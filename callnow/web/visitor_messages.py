"""The status page's message form: a visitor whose call could not happen writes to the owner.

Only HTTP here; `services/messages.py` decides and writes."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from callnow.domain.left_message import MAX_CHARS
from callnow.services import messages, public_page
from callnow.services.intake import Submission
from callnow.services.public_page import CaptchaAnswer
from callnow.store import requests as request_store
from callnow.web import forms
from callnow.web.context import UnitOfWork, app_state, client_address, templates
from callnow.web.public import page_again, status_page

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
        return templates.TemplateResponse(request, "public/not_available.html", {}, status_code=404)
    text = forms.field(form, "message", _FIELD_CHARS)
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    if not tokens.valid(forms.field(form, "form_token", 300), _purpose(token)):
        error = "This form has expired. Please send your message again."
        return status_page(
            request, call_request, message_error=error, message_value=text, status_code=400
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
        return templates.TemplateResponse(
            request, "public/throttled.html", {}, status_code=429, headers={"Retry-After": "60"}
        )
    if outcome.refusal is not None:
        return status_page(
            request,
            call_request,
            message_error=outcome.error,
            message_value=text if outcome.refusal is messages.Refusal.INVALID else "",
            status_code=_STATUS[outcome.refusal],
        )
    url = f"/callnow/{call_request.profile.callnow_id}/requests/{token}#message"
    return RedirectResponse(url, status_code=303)


_CLOSED_ERRORS = {
    messages.Refusal.CAPTCHA_WRONG: (
        400,
        {"captcha": "The characters did not match the picture. Please try this new one."},
    ),
    messages.Refusal.OPEN: (409, {"form": "The page takes requests again: ask for a call back."}),
}


@router.post("/callnow/{callnow_id}/message")
def leave_closed_message(
    request: Request, callnow_id: str, form: forms.PostedForm, session: UnitOfWork
) -> Response:
    return _leave_closed(request, session, callnow_id, form)


def _leave_closed(request: Request, session: Session, callnow_id: str, form: FormData) -> Response:
    """The out-of-hours page's message: name, number and text, kept on a request of its own."""
    now = datetime.now(UTC)
    profile = public_page.visible_page(session, callnow_id, now)
    if profile is None:
        return templates.TemplateResponse(request, "public/not_available.html", {}, status_code=404)
    values = {
        "name": forms.field(form, "name", 200),
        "number": forms.field(form, "number", 100),
        "message": forms.field(form, "message", _FIELD_CHARS),
    }
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    if not tokens.valid(forms.field(form, "form_token", 300), _purpose(f"page:{profile.id}")):
        errors = {"form": "This form has expired. Please check your details and send again."}
        return page_again(request, session, profile, values=values, errors=errors, status_code=400)
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
        url = f"/callnow/{profile.callnow_id}/requests/{outcome.request.token}#message"
        return RedirectResponse(url, status_code=303)
    if outcome.refusal is messages.Refusal.THROTTLED:
        return templates.TemplateResponse(
            request, "public/throttled.html", {}, status_code=429, headers={"Retry-After": "60"}
        )
    status_code, errors = 422, outcome.errors
    if outcome.refusal in _CLOSED_ERRORS:
        status_code, errors = _CLOSED_ERRORS[outcome.refusal]
    return page_again(
        request, session, profile, values=values, errors=errors, status_code=status_code
    )
