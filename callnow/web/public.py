"""The visitor's side: the CallNow page, the request form, the one-step link, the status page."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.routing import Match, Route
from starlette.types import Scope

from callnow.domain.availability import is_available, next_opening
from callnow.domain.left_message import MAX_CHARS
from callnow.domain.phone import parse_visitor_number
from callnow.domain.request_state import RequestState, is_terminal
from callnow.domain.scheduling import no_script_refresh_s
from callnow.domain.visitor_text import visitor_message
from callnow.i18n import gettext as _
from callnow.services import messages, public_page, visitor_journey
from callnow.services.intake import Submission
from callnow.services.public_page import Refusal
from callnow.store import profiles
from callnow.store import requests as request_store
from callnow.store.models import CallRequest, Profile
from callnow.web import embed, forms, language
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


def _visible_profile(request: Request, session: Session, callnow_id: str) -> Profile | None:
    return public_page.visible_page(session, callnow_id, _now(), app_state(request).pages)


def not_available(request: Request) -> HTMLResponse:
    """The one answer for every page a visitor may not see, in their browser's language."""
    language.choose(request, None)
    return templates.TemplateResponse(request, "public/not_available.html", {}, status_code=404)


def throttled(
    request: Request, profile: Profile, headers: dict[str, str], posted_language: str = ""
) -> HTMLResponse:
    """One plain answer for every limit, in the language of the form that was sent."""
    language.choose(request, profile, posted=posted_language)
    return templates.TemplateResponse(
        request, "public/throttled.html", {}, status_code=429, headers=headers
    )


def _embedded(request: Request) -> bool:
    """The embed variant (`?embed=1`): the page inside the owner's button overlay."""
    return request.query_params.get(embed.EMBED_QUERY) == "1"


def _throttled(request: Request, profile: Profile, choice: language.Choice) -> HTMLResponse:
    """One plain answer for every limit, so a prober cannot tell which one fired (inside the
    button's overlay it stays framable, or the visitor would see a blank frame)."""
    headers = {"Retry-After": "60"}
    if _embedded(request):
        headers.update(embed.frame_headers(profiles.embed_of(profile)))
    return throttled(request, profile, headers, choice.language)


def _page(
    request: Request,
    session: Session,
    profile: Profile,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    embedded: bool = False,
    choice: language.Choice | None = None,
) -> HTMLResponse:
    if choice is None:
        choice = language.choose(request, profile)
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
        "hours": visitor_journey.hours_lines(profile),
        "timezone": visitor_journey.zone_label(profile, now),
        "form_token": tokens.issue(f"public:{profile.id}"),
        "values": values or {},
        "errors": errors or {},
        "captcha_token": captcha_token,
        "message_max": MAX_CHARS,
        "embedded": embedded,
        "form_action": embed.frame_path(profile.callnow_id)
        if embedded
        else embed.page_path(profile.callnow_id),
        "languages": choice.options(embed.page_path(profile.callnow_id), embedded),
        "switch_field": language.SWITCH_FIELD,
        "language": choice.language,
    }
    headers = embed.frame_headers(profiles.embed_of(profile)) if embedded else None
    response = templates.TemplateResponse(
        request, "public/page.html", context, status_code=status_code, headers=headers
    )
    return language.remember(response, choice)


def page_again(
    request: Request,
    session: Session,
    profile: Profile,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int,
    choice: language.Choice | None = None,
) -> HTMLResponse:
    """The page once more with what was posted and what was wrong (the closed page's message
    form uses it)."""
    return _page(
        request,
        session,
        profile,
        values=values,
        errors=errors,
        status_code=status_code,
        choice=choice,
    )


def _status_url(
    profile: Profile, call_request: CallRequest, embedded: bool = False, lang: str | None = None
) -> str:
    """The request's status page; `lang` when the visitor's browser alone would not choose it
    (a visitor who switched language inside a frame may have no cookie)."""
    url = f"/callnow/{profile.callnow_id}/requests/{call_request.token}"
    query = [(embed.EMBED_QUERY, "1")] if embedded else []
    if lang is not None:
        query.append((language.QUERY, lang))
    return f"{url}?{urlencode(query)}" if query else url


def status_url_for(
    request: Request, profile: Profile, call_request: CallRequest, choice: language.Choice
) -> str:
    """Where a visitor goes once their request is placed: its status page, in their language."""
    lang = choice.language
    keep = None if lang == language.browser_language(request, profile) else lang
    return _status_url(profile, call_request, _embedded(request), keep)


def _submission(request: Request, name: str | None, number: str, channel: str) -> Submission:
    return Submission(
        name=name,
        number=number,
        source_address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:256],
        channel=channel,
    )


def captcha_wrong() -> str:
    return _("The characters did not match the picture. Please try this new one.")


def _answer(
    request: Request,
    session: Session,
    profile: Profile,
    outcome: public_page.PageOutcome,
    values: dict[str, str],
    choice: language.Choice,
) -> Response:
    """The page for what the safeguard pipeline said."""
    refusal = outcome.refusal
    embedded = _embedded(request)
    if refusal is None:
        assert outcome.request is not None
        url = status_url_for(request, profile, outcome.request, choice)
        return RedirectResponse(url, status_code=303)
    if refusal is Refusal.THROTTLED:
        return _throttled(request, profile, choice)
    if refusal is Refusal.CAPTCHA_WRONG:
        errors = {"captcha": captcha_wrong()}
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
        choice=choice,
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
    profile = _visible_profile(request, session, callnow_id)
    if profile is None:
        current_id = public_page.renamed_to(session, callnow_id, _now(), app_state(request).pages)
        if current_id is not None:
            return _to_current_id(request, current_id)
        return not_available(request)
    choice = language.choose(request, profile)
    if _embedded(request):  # the overlay shows the form; one-step links are for whole pages
        return _page(request, session, profile, embedded=True, choice=choice)
    if number is None:
        return _page(request, session, profile, choice=choice)
    values = {"name": (name or "")[:60], "number": number[:40]}
    safeguards = app_state(request).safeguards
    if not public_page.one_step_possible(
        session, profile, safeguards, _now(), request.method, request.headers
    ):
        return _page(request, session, profile, values=values, choice=choice)
    submission = _submission(request, name, number, "one_step")
    outcome = public_page.ask_for_callback(session, profile, submission, _now(), safeguards)
    return _answer(request, session, profile, outcome, values, choice)


async def submit_form(request: Request) -> Response:
    callnow_id: str = request.path_params["callnow_id"]
    form = await forms.posted_form(request)
    return await in_one_transaction(
        request, lambda session: _submit_form(request, session, callnow_id, form)
    )


class _PostOnlyRoute(Route):
    """A route that sees only POST: any other method on its path goes on to the page's own
    routes as if this one were not there, so their answers (405 and its Allow) stay theirs."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") != "POST":
            return Match.NONE, {}
        return super().matches(scope)


def install(app: FastAPI) -> None:
    """The visitor's routes, the form's POST ahead of every route of the app.

    The POST, which a flood hits hardest, is a plain Starlette route first in the app's own
    table, found by one pattern match. As a route of this router, FastAPI matched the included
    routers before it and this one twice over and solved the route's parameters and dependencies
    on every post: about a third of the web layer's CPU per post around the service call, on the
    event loop. It matches nothing but POST on its own path, so its place changes no other
    route's match."""
    app.router.routes.insert(
        0,
        _PostOnlyRoute(
            "/callnow/{callnow_id}",
            submit_form,
            methods=["POST"],
            name="submit_form",
            include_in_schema=False,
        ),
    )
    app.include_router(router)


def _submit_form(request: Request, session: Session, callnow_id: str, form: FormData) -> Response:
    profile = _visible_profile(request, session, callnow_id)
    if profile is None:
        return not_available(request)
    values = {"name": forms.field(form, "name", 200), "number": forms.field(form, "number", 100)}
    embedded = _embedded(request)
    switch = forms.field(form, language.SWITCH_FIELD, 8)
    if switch:  # the language switch: the same page in the chosen language, nothing sent
        choice = language.choose(request, profile, switched=switch)
        return _page(request, session, profile, values=values, embedded=embedded, choice=choice)
    choice = language.choose(request, profile, posted=forms.field(form, "lang", 8))
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    errors = {}
    if forms.field(form, "website"):  # a honeypot field people never see or fill
        errors = {"form": _("Please try again.")}
    elif not tokens.valid(forms.field(form, "form_token", 300), f"public:{profile.id}"):
        errors = {"form": form_expired()}
    if errors:
        return _page(
            request,
            session,
            profile,
            values=values,
            errors=errors,
            status_code=400,
            embedded=embedded,
            choice=choice,
        )
    captcha = public_page.CaptchaAnswer(
        forms.field(form, "captcha_token", 64), forms.field(form, "captcha_answer", 20)
    )
    submission = _submission(request, values["name"], values["number"], "web")
    outcome = public_page.ask_for_callback(
        session, profile, submission, _now(), app_state(request).safeguards, captcha
    )
    return _answer(request, session, profile, outcome, values, choice)


def form_expired() -> str:
    return _("This form has expired. Please check your details and send again.")


def _captcha_media(
    request: Request, session: Session, callnow_id: str, token: str, kind: str
) -> Response:
    profile = _visible_profile(request, session, callnow_id)
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
        current_id = public_page.renamed_to(session, callnow_id, _now(), app_state(request).pages)
        if current_id == call_request.profile.callnow_id:
            url = _status_url(call_request.profile, call_request, embedded)
            return RedirectResponse(url, 301)
    if call_request is None or call_request.profile.callnow_id != callnow_id.lower():
        return not_available(request)
    return status_page(request, call_request, embedded=embedded)


def status_page(
    request: Request,
    call_request: CallRequest,
    *,
    message_error: str = "",
    message_value: str = "",
    status_code: int = 200,
    embedded: bool = False,
    choice: language.Choice | None = None,
) -> HTMLResponse:
    """The status page, with the message form where a message may be left (and its error)."""
    state = RequestState(call_request.state)
    profile = call_request.profile
    if choice is None:
        choice = language.choose(request, profile)
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
        "languages": choice.options(_status_url(profile, call_request), embedded),
        "switch_field": language.SWITCH_FIELD,
        "language": choice.language,
        "events_url": _events_url(profile, call_request, choice),
        "refresh_s": no_script_refresh_s(call_request.scheduled_for, now),
    }
    headers = embed.frame_headers(profiles.embed_of(profile)) if embedded else None
    response = templates.TemplateResponse(
        request, "public/status.html", context, status_code=status_code, headers=headers
    )
    return language.remember(response, choice)


def _events_url(profile: Profile, call_request: CallRequest, choice: language.Choice) -> str:
    """The live status stream, in the page's language (a framed page may have no cookie)."""
    url = f"/callnow/{profile.callnow_id}/requests/{call_request.token}/events"
    return f"{url}?{urlencode([(language.QUERY, choice.language)])}"


@router.api_route("/callnow/{callnow_id}/embed.js", methods=["GET", "HEAD"])
def embed_script(request: Request, callnow_id: str, session: UnitOfWork) -> Response:
    """The button's script for a site's snippet. A hidden page gets an empty script: the
    snippet's link then leads to the page's usual "not available" answer."""
    profile = _visible_profile(request, session, callnow_id)
    body = ""
    if profile is not None:
        # The site's visitor reads the button in their browser's language, among the page's.
        language.choose(request, profile)
        body = embed.button_script(profile.callnow_id, profiles.embed_of(profile))
    return Response(
        body,
        status_code=200 if profile else 404,
        media_type="text/javascript",
        # Short: a change of label, colour or sites reaches the owner's site within minutes.
        headers={"Cache-Control": "public, max-age=300", "Vary": "Accept-Language, Cookie"},
    )


def status_message(call_request: CallRequest, region: str) -> str:
    state = RequestState(call_request.state)
    calling_from = (
        calling_from_display(call_request, region) if state is RequestState.CALLING_VISITOR else ""
    )
    audience = visitor_journey.audience_of(call_request, _now())
    return visitor_message(state, call_request.reason, calling_from, audience)


def calling_from_display(call_request: CallRequest, region: str) -> str:
    """The number the visitor's phone will show, as they would write it."""
    return parse_visitor_number(call_request.profile.extension.external_number, region).display
