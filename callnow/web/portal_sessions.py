"""The owner's sessions: where they are logged in, ending one, or logging out everywhere."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from callnow.domain.sign_in import device_label
from callnow.i18n import gettext as _
from callnow.store import profiles, web_sessions
from callnow.store.models import User, utcnow
from callnow.web import forms, sign_in
from callnow.web.context import UnitOfWork, app_state
from callnow.web.owner_language import negotiated_language
from callnow.web.owner_view import OwnerView
from callnow.web.portal import (
    SESSION_COOKIE,
    _checked_form,
    _render,
    _to_login,
    web_session,
)

router = APIRouter(
    prefix="/portal", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)


def _owner_zone(request: Request, session: Session, user: User) -> str:
    """The owner's time zone: their first page's, else their tenant's, else the platform's."""
    for profile in profiles.owned_by(session, user.id):
        if profile.timezone:
            return profile.timezone
    if user.tenant is not None:
        return user.tenant.timezone
    return app_state(request).settings.default_timezone


def _duration(seconds: int) -> str:
    hours, minutes = divmod(seconds // 60, 60)
    if hours and minutes:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    if hours:
        return _("%(hours)d h") % {"hours": hours}
    return _("%(minutes)d min") % {"minutes": minutes}


def _page(request: Request, session: Session, status_code: int = 200) -> Response:
    current = web_session(request, session)
    if current is None:
        return _to_login()
    user = current.user
    settings = app_state(request).settings
    zone_name = _owner_zone(request, session, user)
    view = OwnerView(ZoneInfo(zone_name), "")
    rows = web_sessions.live_of(session, user.id, utcnow(), sign_in.lifetimes(settings))
    listed = [
        {
            "id": row.id,
            "device": device_label(row.user_agent),
            "user_agent": row.user_agent or _("not given"),
            "last_seen": view.when(row.last_seen_at),
            "started": view.when(row.created_at),
            "network": row.network or _("unknown"),
            "where": _("Admin") if row.realm == "admin" else _("Portal"),
            "current": row.id == current.id,
        }
        for row in rows
    ]
    return _render(
        request,
        "sessions.html",
        user,
        sessions=listed,
        zone=zone_name,
        idle=_duration(settings.web.session_idle_s),
        absolute=_duration(settings.web.session_absolute_s),
        status_code=status_code,
    )


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, session: UnitOfWork) -> Response:
    return _page(request, session)


@router.post("/sessions", response_class=HTMLResponse)
def end_sessions(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    current = web_session(request, session)
    if current is None:
        return _to_login()
    form = _checked_form(request, posted)
    if form is None:
        return _page(request, session, status_code=400)
    now = utcnow()
    operation = forms.field(form, "op", 10)
    if operation == "all":
        web_sessions.revoke_all(session, current.user_id, now)
    elif operation == "end":
        chosen = forms.field(form, "session_id", 12)
        row = (
            web_sessions.owned(session, current.user_id, int(chosen)) if chosen.isdigit() else None
        )
        if row is None:
            return _page(request, session, status_code=404)
        web_sessions.revoke(session, row, now)
    else:
        return _page(request, session, status_code=400)
    if current.revoked_at is None:
        return RedirectResponse("/portal/sessions", status_code=303)
    response = _to_login()
    sign_in.clear_cookie(response, app_state(request).settings, SESSION_COOKIE, path="/")
    return response
