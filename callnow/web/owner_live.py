"""Owner confirmation on the web: the pending list (live), Accept and Decline.

A request whose decision is `confirm_web` waits queued until the owner answers here. Accept sets
the decision to `web` and leaves the request queued, so the engine's dispatcher claims it like any
other and rings the owner with a short whisper before calling the visitor (no keypad step).
Decline ends it as `owner_declined`. A request that waited longer than the web confirmation
timeout can no longer be accepted; the dispatcher's periodic `expire_web_confirmations()` ends it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from callnow.billing.ledger import cost_phrase_for
from callnow.billing.policy import policy_from
from callnow.domain import web_confirmation as rules
from callnow.domain.local_display import local_time, national_number
from callnow.domain.rating import BillingPolicy
from callnow.i18n import gettext as _
from callnow.i18n import ngettext, use_language
from callnow.store import profiles, wakeup, web_sessions
from callnow.store import web_confirmation as held
from callnow.store.models import CallRequest, User, utcnow
from callnow.web import forms, sign_in, sse
from callnow.web.context import AppState, UnitOfWork, app_state
from callnow.web.owner_language import negotiated_language
from callnow.web.portal import _checked_form, _render, _to_login, current_user, web_session

router = APIRouter(
    prefix="/portal", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)


def _policy(request: Request) -> BillingPolicy:
    return policy_from(app_state(request).settings.billing)


TIMING = sse.StreamTiming()


def _item(
    session: Session, call_request: CallRequest, now: datetime, policy: BillingPolicy
) -> dict[str, Any]:
    region = profiles.tenant_of(call_request.profile).region
    zone = profiles.timezone_of(call_request.profile)
    # The same words the phone prompt uses, so the owner knows what accepting will cost.
    cost = cost_phrase_for(session, call_request.id, now, policy=policy)
    return {
        "token": call_request.token,
        "callnow_id": call_request.profile.callnow_id,
        "name": call_request.caller_name or "",
        "number": national_number(call_request.number_e164, region),
        "e164": call_request.number_e164,
        "requested": local_time(call_request.created_at, zone, "%H:%M"),
        "expires": local_time(rules.deadline(call_request.created_at), zone, "%H:%M"),
        "cost": cost or "",
    }


def pending_items(session: Session, user_id: int, policy: BillingPolicy) -> list[dict[str, Any]]:
    """What the owner can still answer: held requests that have not run out of time."""
    now = utcnow()
    return [
        _item(session, r, now, policy)
        for r in held.pending_for_owner(session, user_id)
        if not rules.has_expired(r.created_at, now)
    ]


def _page(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return _render(
        request,
        "pending.html",
        user,
        items=pending_items(session, user.id, _policy(request)),
        error=error,
        timeout_minutes=int(rules.DEFAULT_TIMEOUT.total_seconds() // 60),
        status_code=status_code,
    )


@router.get("/pending")
def pending_page(request: Request, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _page(request, session, user)


def _snapshot(
    state: AppState, user_id: int, session_id: int, policy: BillingPolicy, language: str
) -> dict[str, Any] | None:
    with state.read_only() as session, use_language(language):
        lifetimes = sign_in.lifetimes(state.settings)
        if not web_sessions.still_live(session, session_id, utcnow(), lifetimes):
            return None  # logged out (here, elsewhere or by an admin): end the stream
        return _worded(pending_items(session, user_id, policy))


def _worded(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The items, and the words the page's script shows with them (by token) in the language
    in use: the script builds rows without a template."""
    count = len(items)
    texts = {
        item["token"]: {
            "details": _("(page %(page)s, asked at %(asked)s, waits until %(until)s)")
            % {"page": item["callnow_id"], "asked": item["requested"], "until": item["expires"]},
            "cost": _("Calling back: %(cost)s") % {"cost": item["cost"]} if item["cost"] else "",
        }
        for item in items
    }
    return {
        "items": items,
        "texts": texts,
        "words": {
            "waiting": ngettext("%(count)s waiting", "%(count)s waiting", count) % {"count": count},
            "accept": _("Accept"),
            "decline": _("Decline"),
            "anonymous": _("Anonymous"),
        },
    }


@router.get("/pending/events")
def pending_events(request: Request) -> Response:
    state = app_state(request)
    with state.read_only() as session:
        row = web_session(request, session)
        if row is None:
            return PlainTextResponse(_("Please log in."), status_code=401)
        user_id, session_id, language = row.user_id, row.id, row.user.language
    policy = _policy(request)
    timing = TIMING
    read = sse.polled(
        lambda: _snapshot(state, user_id, session_id, policy, language), timing.poll_s
    )
    stream = sse.watch(read, event="pending", timing=timing)
    return StreamingResponse(stream, media_type="text/event-stream", headers=sse.HEADERS)


# The navigation's count on every portal page: a cheap query, and no hurry.
COUNT_TIMING = sse.StreamTiming(poll_s=2.0)


def _count_snapshot(state: AppState, user_id: int) -> dict[str, Any] | None:
    with state.read_only() as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            return None
        now = utcnow()
        waiting = held.pending_for_owner(session, user_id)
        return {"count": sum(1 for r in waiting if not rules.has_expired(r.created_at, now))}


@router.get("/pending/count/events")
def pending_count_events(request: Request) -> Response:
    """How many requests wait for the owner, for the navigation of every portal page."""
    state = app_state(request)
    with state.read_only() as session:
        user = current_user(request, session)
        if user is None:
            return PlainTextResponse(_("Please log in."), status_code=401)
        user_id = user.id
    read = sse.polled(lambda: _count_snapshot(state, user_id), COUNT_TIMING.poll_s)
    stream = sse.watch(read, event="count", timing=COUNT_TIMING)
    return StreamingResponse(stream, media_type="text/event-stream", headers=sse.HEADERS)


def answer_held(session: Session, call_request: CallRequest, *, accept: bool) -> bool:
    """Accept or decline a request held for the owner: the one way both the Pending page and
    the mailed one-click links answer. False if it no longer waits (answered, cancelled or
    expired)."""
    done = held.accept(session, call_request) if accept else held.decline(session, call_request)
    if done and accept:
        wakeup.queued(session)  # an engine takes it after the commit, not at its next poll
    return done


def _answer(
    request: Request, token: str, posted: FormData, session: Session, accept: bool
) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    form = _checked_form(request, posted)
    if form is None:
        return _page(
            request, session, user, error=_("The form expired; please try again."), status_code=400
        )
    call_request = held.owned_request(session, user.id, token)
    if call_request is None:
        return _render(request, "missing.html", user, status_code=404)
    done = answer_held(session, call_request, accept=accept)
    if not done:
        message = _("That request is no longer waiting for you (answered, cancelled or expired).")
        return _page(request, session, user, error=message, status_code=409)
    return RedirectResponse("/portal/pending", status_code=303)


@router.post("/requests/{token}/accept")
def accept(request: Request, token: str, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    return _answer(request, token, posted, session, accept=True)


@router.post("/requests/{token}/decline")
def decline(
    request: Request, token: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    return _answer(request, token, posted, session, accept=False)
