"""The visitor's live status: an event stream of the request's state, and cancelling it.

The status page itself is `public.request_status`; `static/status.js` listens to the stream
below and updates the page's `#status` line (an `aria-live` region) without a reload. Without
scripts the page falls back to its `<noscript>` meta refresh.

Cancelling is allowed only while the request is `queued` and no engine holds it. The domain also
allows `calling_owner → cancelled`, but then the engine is in the middle of the owner's call and
would not know to hang up or to stop before dialling the visitor, so the web does not offer it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from callnow.domain.request_state import VISITOR_CANCELLABLE, RequestState, is_terminal
from callnow.domain.visitor_text import Audience, step_of, visitor_message
from callnow.i18n import use_language
from callnow.services.visitor_journey import audience_of, owner_held
from callnow.store import profiles
from callnow.store import requests as request_store
from callnow.store.guarded import cancel_for_visitor
from callnow.store.models import CallRequest, utcnow
from callnow.web import forms, language, sse
from callnow.web.context import UnitOfWork, app_state
from callnow.web.public import calling_from_display, not_available, status_page, status_url_for
from callnow.web.status_board import Seen, StatusBoard

router = APIRouter(include_in_schema=False)
# Module-level so tests can use shorter times; read on every request.
TIMING = sse.StreamTiming()


def _purpose(token: str) -> str:
    return f"status:{token}"


def cancel_form_token(request: Request, token: str) -> str:
    """A signed token for the status page's cancel form (bound to this request's token)."""
    return forms.FormTokens(app_state(request).settings.web.secret_key).issue(_purpose(token))


def cancellable(state: RequestState) -> bool:
    """Until we start calling the visitor: waiting, or while the owner's phone rings."""
    return state in VISITOR_CANCELLABLE


def _find(session: Session, callnow_id: str, token: str) -> CallRequest | None:
    call_request = request_store.by_token(session, token)
    if call_request is None or call_request.profile.callnow_id != callnow_id.lower():
        return None
    return call_request


def _snapshot(seen: Seen | None, calling_from: str, audience: Audience) -> dict[str, Any] | None:
    if seen is None:
        return None  # the request is gone: end the stream
    state = RequestState(seen.state)
    # Asked at every snapshot: a hold that starts or ends while the page is open shows.
    audience = replace(audience, owner_on_a_call=owner_held(seen.owner_busy_until, utcnow()))
    return {
        "state": state.value,
        "step": step_of(state),
        "message": visitor_message(state, seen.reason, calling_from, audience),
        "terminal": is_terminal(state),
        "cancellable": cancellable(state),
    }


@router.get("/callnow/{callnow_id}/requests/{token}/events")
def status_events(request: Request, callnow_id: str, token: str) -> Response:
    state = app_state(request)
    with state.read_only() as session:
        call_request = _find(session, callnow_id, token)
        if call_request is None:
            return PlainTextResponse("Not found", status_code=404)
        request_id = call_request.id
        seen = Seen(
            call_request.state, call_request.reason, call_request.profile.extension.busy_until
        )
        region = profiles.tenant_of(call_request.profile).region
        calling_from = calling_from_display(call_request, region)
        audience = audience_of(call_request)
        # The page passes its language (`?lang=`): the messages stay in the page's language.
        spoken = language.choose(request, call_request.profile).language
    stream = _status_stream(state.status_board, request_id, seen, calling_from, audience, spoken)
    return StreamingResponse(stream, media_type="text/event-stream", headers=sse.HEADERS)


async def _status_stream(
    board: StatusBoard,
    request_id: int,
    seen: Seen,
    calling_from: str,
    audience: Audience,
    spoken: str = "en",
) -> AsyncIterator[bytes]:
    timing = TIMING
    async with board.watching(request_id, seen, poll_s=timing.poll_s) as watch:

        async def next_snapshot() -> dict[str, Any] | None:
            latest = await watch.next(timing.poll_s)
            # Chosen around the words only: the stream resumes in other contexts between events.
            with use_language(spoken):
                return _snapshot(latest, calling_from, audience)

        async for chunk in sse.watch(
            next_snapshot,
            event="status",
            timing=timing,
            final=lambda snap: bool(snap["terminal"]),
            event_id=lambda snap: str(snap["state"]),
        ):
            yield chunk


@router.post("/callnow/{callnow_id}/requests/{token}/cancel")
def cancel(
    request: Request,
    callnow_id: str,
    token: str,
    form: forms.PostedForm,
    session: UnitOfWork,
) -> Response:
    call_request = _find(session, callnow_id, token)
    if call_request is None:
        return not_available(request)
    choice = language.choose(request, call_request.profile, posted=forms.field(form, "lang", 8))
    tokens = forms.FormTokens(app_state(request).settings.web.secret_key)
    status_code = 400
    if tokens.valid(forms.field(form, "form_token", 300), _purpose(token)):
        now = utcnow()
        if cancellable(RequestState(call_request.state)):
            cancel_for_visitor(session, call_request, now)
            # Inside the button's overlay (`?embed=1`) the answer stays framable.
            url = status_url_for(request, call_request.profile, call_request, choice)
            return RedirectResponse(url, status_code=303)
        status_code = 409  # too late: the engine took it, or it already ended
    page = status_page(
        request, call_request, embedded=request.query_params.get("embed") == "1", choice=choice
    )
    page.status_code = status_code
    return page
