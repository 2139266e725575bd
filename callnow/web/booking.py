"""The visitor books a time: the booking page and its form, and what the status page shows of a
booked request. Only HTTP here: `services/scheduling.py` says which slots a page offers and
`services/public_page.ask_for_callback` takes the booking through the page's safeguards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from callnow.i18n import gettext as _
from callnow.services import public_page, scheduling, visitor_journey
from callnow.services.public_page import Refusal
from callnow.store import profiles
from callnow.store.models import CallRequest, Profile
from callnow.web import embed, forms, language
from callnow.web.context import app_state, in_one_transaction, templates
from callnow.web.public import (
    _embedded,
    _submission,
    _throttled,
    captcha_wrong,
    not_available,
    status_url_for,
)

router = APIRouter(include_in_schema=False)


def _now() -> datetime:
    return datetime.now(UTC)


def book_path(profile: Profile, embedded: bool = False) -> str:
    path = f"/callnow/{profile.callnow_id}/book"
    return f"{path}?{embed.EMBED_QUERY}=1" if embedded else path


def _purpose(profile: Profile) -> str:
    return f"book:{profile.id}"


def _book_page(
    request: Request,
    session: Session,
    profile: Profile,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    choice: language.Choice | None = None,
) -> HTMLResponse:
    if choice is None:
        choice = language.choose(request, profile)
    now = _now()
    state = app_state(request)
    embedded = _embedded(request)
    tz = profiles.timezone_of(profile)
    policy = scheduling.policy_of(profile)
    captcha_token = None
    if policy.enabled and public_page.captcha_required(session, profile, state.safeguards, now):
        captcha_token = state.safeguards.captcha.issue(profile.id, now)
    context: dict[str, Any] = {
        "profile": profile,
        "owner_name": visitor_journey.owner_name(profile),
        "offered": policy.enabled,
        "days": scheduling.open_slots(session, profile, now),
        "days_ahead": policy.days_ahead,
        "zone": visitor_journey.zone_label(profile, now),
        "zone_key": tz.key,
        "hours": visitor_journey.hours_lines(profile),
        "number_hint": visitor_journey.hint_for(profile),
        "privacy_note": visitor_journey.privacy_note(profile),
        "form_token": forms.FormTokens(state.settings.web.secret_key).issue(_purpose(profile)),
        "captcha_token": captcha_token,
        "values": values or {},
        "errors": errors or {},
        "embedded": embedded,
        "form_action": book_path(profile, embedded),
        "language": choice.language,
        "page_href": embed.frame_path(profile.callnow_id)
        if embedded
        else embed.page_path(profile.callnow_id),
    }
    headers = embed.frame_headers(profiles.embed_of(profile)) if embedded else None
    response = templates.TemplateResponse(
        request, "public/book.html", context, status_code=status_code, headers=headers
    )
    return language.remember(response, choice)


@router.api_route(
    "/callnow/{callnow_id}/book", methods=["GET", "HEAD"], response_class=HTMLResponse
)
async def book_page(request: Request, callnow_id: str) -> Response:
    return await in_one_transaction(request, lambda session: _show(request, session, callnow_id))


def _show(request: Request, session: Session, callnow_id: str) -> Response:
    profile = public_page.visible_page(session, callnow_id, _now(), app_state(request).pages)
    if profile is None:
        return not_available(request)
    return _book_page(request, session, profile)


@router.post("/callnow/{callnow_id}/book", response_class=HTMLResponse)
async def book(request: Request, callnow_id: str, form: forms.PostedForm) -> Response:
    return await in_one_transaction(
        request, lambda session: _book(request, session, callnow_id, form)
    )


_STATUS = {Refusal.CAPTCHA_WRONG: 400, Refusal.CLOSED: 409}


def _book(request: Request, session: Session, callnow_id: str, form: FormData) -> Response:
    profile = public_page.visible_page(session, callnow_id, _now(), app_state(request).pages)
    if profile is None:
        return not_available(request)
    choice = language.choose(request, profile, posted=forms.field(form, "lang", 8))
    values = {
        "name": forms.field(form, "name", 200),
        "number": forms.field(form, "number", 100),
        "slot": forms.field(form, "slot", 40),
    }
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    if forms.field(form, "website"):  # the honeypot
        errors = {"form": _("Please try again.")}
    elif not tokens.valid(forms.field(form, "form_token", 300), _purpose(profile)):
        errors = {"form": _("This form has expired. Please check your details and send again.")}
    else:
        errors = {}
    if errors:
        return _book_page(
            request, session, profile, values=values, errors=errors, status_code=400, choice=choice
        )
    captcha = public_page.CaptchaAnswer(
        forms.field(form, "captcha_token", 64), forms.field(form, "captcha_answer", 20)
    )
    outcome = public_page.ask_for_callback(
        session,
        profile,
        _submission(request, values["name"], values["number"], "web"),
        _now(),
        app_state(request).safeguards,
        captcha,
        slot=values["slot"],
        owner_name=visitor_journey.owner_name(profile),
    )
    if outcome.refusal is None:
        assert outcome.request is not None
        url = status_url_for(request, profile, outcome.request, choice)
        return RedirectResponse(url, status_code=303)
    if outcome.refusal is Refusal.THROTTLED:
        return _throttled(request, profile, choice)
    if outcome.refusal is Refusal.CAPTCHA_WRONG:
        errors = {"captcha": captcha_wrong()}
    else:
        errors = outcome.errors
    return _book_page(
        request,
        session,
        profile,
        values=values,
        errors=errors,
        status_code=_STATUS.get(outcome.refusal, 422),
        choice=choice,
    )


def booking_facts(request: Request, call_request: CallRequest) -> dict[str, str] | None:
    """For the status page (a template global): a booked request's slot, on the owner's clock
    and as UTC for the script that adds the visitor's own time."""
    if call_request.scheduled_for is None:
        return None
    profile = call_request.profile
    return {
        "when": visitor_journey.local_time(profile, call_request.scheduled_for),
        "utc": call_request.scheduled_for.astimezone(UTC).isoformat(),
        "zone_key": profiles.timezone_of(profile).key,
    }


def booking_offered(request: Request, profile: Profile) -> str | None:
    """Where a visitor of this page may book a time (a template global), or None when the owner
    does not offer booking."""
    if not scheduling.policy_of(profile).enabled or not profile.enabled or profile.do_not_allow:
        return None
    return book_path(profile, request.query_params.get(embed.EMBED_QUERY) == "1")
