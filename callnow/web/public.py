"""The visitor's side: the CallNow page, the request form, the one-step link, the status page."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from callnow.domain.availability import describe_hours, is_available, next_opening
from callnow.domain.left_message import MAX_CHARS
from callnow.domain.phone import parse_visitor_number
from callnow.domain.request_state import RequestState, is_terminal
from callnow.domain.visitor_text import visitor_message
from callnow.services import messages, public_page, visitor_journey
from callnow.services.intake import Submission
from callnow.services.public_page import Refusal
from callnow.store import profiles
from callnow.store import requests as request_store
from callnow.store.models import CallRequest, Profile
from callnow.web import embed, forms
from callnow.web.context import (
    UnitOfWork,
    app_state,
    client_address,
    in_one_transaction,
    templates,
)

# HTML pages for visitors, not part of the Call API: kept out of its OpenAPI document.
router = APIRouter(include_in_schema=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _visible_profile(session: Session, callnow_id: str) -> Profile | None:
    return public_page.visible_page(session, callnow_id, _now())


def _not_available(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "public/not_available.html", {}, status_code=404)


def _embedded(request: Request) -> bool:
    """The embed variant (`?embed=1`): the page inside the owner's button overlay."""
    return request.query_params.get(embed.EMBED_QUERY) == "1"


def _throttled(request: Request, profile: Profile) -> HTMLResponse:
    """One plain answer for every limit, so a prober cannot tell which one fired (inside the
    button's overlay it stays framable, or the visitor would see a blank frame)."""
    headers = {"Retry-After": "60"}
    if _embedded(request):
        headers.update(embed.frame_headers(profiles.embed_of(profile)))
    return templates.TemplateResponse(
        request, "public/throttled.html", {}, status_code=429, headers=headers
    )


def _page(
    request: Request,
    session: Session,
    profile: Profile,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    embedded: bool = False,
) -> HTMLResponse:
    tz = profiles.timezone_of(profile)
    windows = profiles.windows_of(profile)
    now = _now()
    state = app_state(request)
    tokens = forms.FormTokens(state.settings.web.secret_key)
    captcha_token = None
    if public_page.captcha_required(session, profile, state.safeguards, now):
        captcha_token = state.safeguards.captcha.issue(profile.id, now)
    available = is_available(windows, now, tz)
    opening = None if available else next_opening(windows, now, tz)
    context = {
        "profile": profile,
        "owner_name": visitor_journey.owner_name(profile),
        "available": available,
        "next_opening": opening and visitor_journey.local_time(profile, opening),
        "number_hint": visitor_journey.hint_for(profile),
        "privacy_note": visitor_journey.privacy_note(profile),
        "hours": describe_hours(windows),
        "timezone": str(tz),
        "form_token": tokens.issue(f"public:{profile.id}"),
        "values": values or {},
        "errors": errors or {},
        "captcha_token": captcha_token,
        "message_max": MAX_CHARS,
        "embedded": embedded,
        "form_action": embed.frame_path(profile.callnow_id)
        if embedded
        else embed.page_path(profile.callnow_id),
    }
    headers = embed.frame_headers(profiles.embed_of(profile)) if embedded else None
    return templates.TemplateResponse(
        request, "public/page.html", context, status_code=status_code, headers=headers
    )


def page_again(
    request: Request,
    session: Session,
    profile: Profile,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int,
) -> HTMLResponse:
    """The page once more with what was posted and what was wrong (the closed page's message
    form uses it)."""
    return _page(request, session, profile, values=values, errors=errors, status_code=status_code)


def _status_url(profile: Profile, call_request: CallRequest, embedded: bool = False) -> str:
    url = f"/callnow/{profile.callnow_id}/requests/{call_request.token}"
    return f"{url}?{embed.EMBED_QUERY}=1" if embedded else url


def _submission(request: Request, name: str | None, number: str, channel: str) -> Submission:
    return Submission(
        name=name,
        number=number,
        source_address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:256],
        channel=channel,
    )


_CAPTCHA_WRONG = "The characters did not match the picture. Please try this new one."


def _answer(
    request: Request,
    session: Session,
    profile: Profile,
    outcome: public_page.PageOutcome,
    values: dict[str, str],
) -> Response:
    """The page for what the safeguard pipeline said."""
    refusal = outcome.refusal
    embedded = _embedded(request)
    if refusal is None:
        assert outcome.request is not None
        return RedirectResponse(_status_url(profile, outcome.request, embedded), status_code=303)
    if refusal is Refusal.THROTTLED:
        return _throttled(request, profile)
    if refusal is Refusal.CAPTCHA_WRONG:
        errors = {"captcha": _CAPTCHA_WRONG}
    elif refusal is Refusal.CLOSED:
        errors = {}
    else:
        errors = outcome.errors
    status_code = {Refusal.CAPTCHA_WRONG: 400, Refusal.CLOSED: 409}.get(refusal, 422)
    return _page(
        request,
        session,
        profile,
        values=values,
        errors=errors,
        status_code=status_code,
        embedded=embedded,
    )


def _to_current_id(request: Request, current_id: str) -> RedirectResponse:
    """301 from a renamed ID to the page's current one, keeping a one-step link's fields."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "id"])
    url = f"/callnow/{quote(current_id)}" + (f"?{query}" if query else "")
    return RedirectResponse(url, status_code=301)


# HEAD answers wherever GET does: link checkers and previewers ask with it.
@router.api_route("/callnow", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def page_by_query(
    request: Request, id: str = "", name: str | None = None, number: str | None = None
) -> Response:
    return await page(request, id, name, number)


@router.api_route("/callnow/{callnow_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def page(
    request: Request, callnow_id: str, name: str | None = None, number: str | None = None
) -> Response:
    return await in_one_transaction(
        request, lambda session: _page_or_one_step(request, session, callnow_id, name, number)
    )


def _page_or_one_step(
    request: Request, session: Session, callnow_id: str, name: str | None, number: str | None
) -> Response:
    profile = _visible_profile(session, callnow_id)
    if profile is None:
        current_id = public_page.renamed_to(session, callnow_id, _now())
        if current_id is not None:
            return _to_current_id(request, current_id)
        return _not_available(request)
    if _embedded(request):  # the overlay shows the form; one-step links are for whole pages
        return _page(request, session, profile, embedded=True)
    if number is None:
        return _page(request, session, profile)
    values = {"name": (name or "")[:60], "number": number[:40]}
    safeguards = app_state(request).safeguards
    if not public_page.one_step_possible(
        session, profile, safeguards, _now(), request.method, request.headers
    ):
        return _page(request, session, profile, values=values)
    submission = _submission(request, name, number, "one_step")
    outcome = public_page.ask_for_callback(session, profile, submission, _now(), safeguards)
    return _answer(request, session, profile, outcome, values)


@router.post("/callnow/{callnow_id}", response_class=HTMLResponse)
async def submit_form(request: Request, callnow_id: str, form: forms.PostedForm) -> Response:
    return await in_one_transaction(
        request, lambda session: _submit_form(request, session, callnow_id, form)
    )


def _submit_form(request: Request, session: Session, callnow_id: str, form: FormData) -> Response:
    profile = _visible_profile(session, callnow_id)
    if profile is None:
        return _not_available(request)
    values = {"name": forms.field(form, "name", 200), "number": forms.field(form, "number", 100)}
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    embedded = _embedded(request)
    errors = {}
    if forms.field(form, "website"):  # a honeypot field people never see or fill
        errors = {"form": "Please try again."}
    elif not tokens.valid(forms.field(form, "form_token", 300), f"public:{profile.id}"):
        errors = {"form": "This form has expired. Please check your details and send again."}
    if errors:
        return _page(
            request,
            session,
            profile,
            values=values,
            errors=errors,
            status_code=400,
            embedded=embedded,
        )
    captcha = public_page.CaptchaAnswer(
        forms.field(form, "captcha_token", 64), forms.field(form, "captcha_answer", 20)
    )
    submission = _submission(request, values["name"], values["number"], "web")
    outcome = public_page.ask_for_callback(
        session, profile, submission, _now(), app_state(request).safeguards, captcha
    )
    return _answer(request, session, profile, outcome, values)


def _captcha_media(
    request: Request, session: Session, callnow_id: str, token: str, kind: str
) -> Response:
    profile = _visible_profile(session, callnow_id)
    book = app_state(request).safeguards.captcha
    render = book.image if kind == "png" else book.audio
    data = render(session, token, profile.id, _now()) if profile else None
    if data is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    media_type = "image/png" if kind == "png" else "audio/wav"
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.api_route("/callnow/{callnow_id}/captcha/{token}.png", methods=["GET", "HEAD"])
def captcha_image(request: Request, callnow_id: str, token: str, session: UnitOfWork) -> Response:
    return _captcha_media(request, session, callnow_id, token, "png")


@router.api_route("/callnow/{callnow_id}/captcha/{token}.wav", methods=["GET", "HEAD"])
def captcha_audio(request: Request, callnow_id: str, token: str, session: UnitOfWork) -> Response:
    return _captcha_media(request, session, callnow_id, token, "wav")


@router.api_route(
    "/callnow/{callnow_id}/requests/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse
)
def request_status(request: Request, callnow_id: str, token: str, session: UnitOfWork) -> Response:
    call_request = request_store.by_token(session, token)
    embedded = _embedded(request)
    if call_request is not None and call_request.profile.callnow_id != callnow_id.lower():
        current_id = public_page.renamed_to(session, callnow_id, _now())
        if current_id == call_request.profile.callnow_id:
            url = _status_url(call_request.profile, call_request, embedded)
            return RedirectResponse(url, 301)
    if call_request is None or call_request.profile.callnow_id != callnow_id.lower():
        return templates.TemplateResponse(request, "public/not_available.html", {}, status_code=404)
    return status_page(request, call_request, embedded=embedded)


def status_page(
    request: Request,
    call_request: CallRequest,
    *,
    message_error: str = "",
    message_value: str = "",
    status_code: int = 200,
    embedded: bool = False,
) -> HTMLResponse:
    """The status page, with the message form where a message may be left (and its error)."""
    state = RequestState(call_request.state)
    profile = call_request.profile
    region = profiles.tenant_of(profile).region
    now = _now()
    cooldown = app_state(request).safeguards.decline_cooldown
    context = {
        "profile": profile,
        "call_request": call_request,
        "state": state,
        "message": status_message(call_request, region),
        "finished": is_terminal(state),
        "caller_number": parse_visitor_number(call_request.number_e164, region).display,
        "requested_at": visitor_journey.local_time(profile, call_request.created_at),
        "steps": visitor_journey.steps(call_request),
        "next_step": visitor_journey.next_step(call_request, now, cooldown),
        "owner_name": visitor_journey.owner_name(profile),
        "message_form": messages.can_leave(call_request),
        "message_error": message_error,
        "message_value": message_value,
        "message_max": MAX_CHARS,
        "embedded": embedded,
    }
    headers = embed.frame_headers(profiles.embed_of(profile)) if embedded else None
    return templates.TemplateResponse(
        request, "public/status.html", context, status_code=status_code, headers=headers
    )


@router.api_route("/callnow/{callnow_id}/embed.js", methods=["GET", "HEAD"])
def embed_script(request: Request, callnow_id: str, session: UnitOfWork) -> Response:
    """The button's script for a site's snippet. A hidden page gets an empty script: the
    snippet's link then leads to the page's usual "not available" answer."""
    profile = _visible_profile(session, callnow_id)
    body = (
        ""
        if profile is None
        else embed.button_script(profile.callnow_id, profiles.embed_of(profile))
    )
    return Response(
        body,
        status_code=200 if profile else 404,
        media_type="text/javascript",
        # Short: a change of label, colour or sites reaches the owner's site within minutes.
        headers={"Cache-Control": "public, max-age=300"},
    )


def status_message(call_request: CallRequest, region: str) -> str:
    state = RequestState(call_request.state)
    calling_from = (
        calling_from_display(call_request, region) if state is RequestState.CALLING_VISITOR else ""
    )
    return visitor_message(
        state, call_request.reason, calling_from, visitor_journey.audience_of(call_request)
    )


def calling_from_display(call_request: CallRequest, region: str) -> str:
    """The number the visitor's phone will show, as they would write it."""
    return parse_visitor_number(call_request.profile.extension.external_number, region).display
