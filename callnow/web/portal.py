"""The owner portal: log in, share the page, set preferences and rules, see requests, API keys."""

from __future__ import annotations

import zoneinfo
from functools import cache
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, object_session
from starlette.datastructures import FormData

from callnow.domain import web_confirmation as confirmation_rules
from callnow.domain.availability import WEEKDAYS
from callnow.domain.embed import MAX_ORIGINS, POSITIONS
from callnow.domain.page import MAX_WINDOWS, WELCOME_MAX_CHARS, is_paused
from callnow.domain.request_state import VISITOR_TEXT, RequestState
from callnow.domain.rules import InvalidRule
from callnow.services import page_settings, scheduling
from callnow.store import accounts, audit, profiles, retired_ids, web_sessions
from callnow.store import requests as request_store
from callnow.store import web_confirmation as held
from callnow.store.models import Profile, User, utcnow
from callnow.store.session_models import WebSession
from callnow.web import embed, forms, share_kit, sign_in
from callnow.web.context import UnitOfWork, app_state, client_address, templates
from callnow.web.owner_view import OwnerView

router = APIRouter(prefix="/portal", include_in_schema=False)


class LoginRequired(Exception):
    pass


def _tokens(request: Request) -> forms.FormTokens:
    return forms.FormTokens(app_state(request).settings.web.secret_key)


# The session cookie holds only a random token (see `web.sign_in`); the login cookie a nonce
# that binds the login form's token to the browser before there is a session.
SESSION_COOKIE = "callnow_session"
LOGIN_COOKIE = "callnow_login"
LOGIN_COOKIE_MAX_AGE_S = forms.FORM_TOKEN_MAX_AGE_S


def web_session(request: Request, session: Session) -> WebSession | None:
    """This browser's live portal session (looked up again on every call, so a stream that
    asks twice sees a logout in between)."""
    row = sign_in.find_session(
        app_state(request), session, request.cookies.get(SESSION_COOKIE), "portal", utcnow()
    )
    request.state.web_session = row
    return row


def _login_nonce(request: Request) -> str:
    nonce = sign_in.cookie_nonce(request.cookies.get(LOGIN_COOKIE))
    nonce = nonce or getattr(request.state, "new_login_nonce", None)
    if nonce is None:
        nonce = request.state.new_login_nonce = sign_in.new_nonce()
    return nonce


def _csrf_purpose(request: Request) -> str:
    """Form tokens are bound to the session (worthless once it ends), or before login to the
    browser's login nonce."""
    row: WebSession | None = getattr(request.state, "web_session", None)
    if row is not None:
        return f"portal:{row.id}:{row.csrf_key}"
    return f"portal-login:{_login_nonce(request)}"


def current_user(request: Request, session: Session) -> User | None:
    row = web_session(request, session)
    return row.user if row is not None else None


def owner_view(request: Request, session: Session, user: User) -> OwnerView:
    settings = app_state(request).settings
    zone, region = profiles.owner_locale(
        session, user, settings.default_timezone, settings.default_region
    )
    return OwnerView(zone, region)


def _pending_count(session: Session, user: User) -> int:
    now = utcnow()
    waiting = held.pending_for_owner(session, user.id)
    return sum(1 for r in waiting if not confirmation_rules.has_expired(r.created_at, now))


def _render(request: Request, name: str, user: User | None, **context: object) -> HTMLResponse:
    status_code = int(context.pop("status_code", 200))  # type: ignore[call-overload]  # an int
    context.update(user=user, csrf=_tokens(request).issue(_csrf_purpose(request)))
    session = object_session(user) if user is not None else None
    if user is not None and session is not None:
        # Every page shows the owner's clock and numbers, and the nav's waiting count.
        context.setdefault("view", owner_view(request, session, user))
        context.setdefault("pending_count", _pending_count(session, user))
    context.setdefault("nav", request.url.path)
    response = templates.TemplateResponse(
        request, f"portal/{name}", context, status_code=status_code
    )
    # Portal pages show private data (a new API key among them): never stored by caches.
    response.headers["Cache-Control"] = "no-store"
    new_nonce = getattr(request.state, "new_login_nonce", None)
    if new_nonce is not None:
        sign_in.set_cookie(
            response,
            app_state(request).settings,
            LOGIN_COOKIE,
            new_nonce,
            path="/portal",
            max_age=LOGIN_COOKIE_MAX_AGE_S,
        )
    return response


def _to_login() -> RedirectResponse:
    return RedirectResponse("/portal/login", status_code=303)


def _checked_form(request: Request, form: FormData) -> FormData | None:
    """The form, if it carries this session's CSRF token; None otherwise."""
    if not _tokens(request).valid(forms.field(form, "csrf", 300), _csrf_purpose(request)):
        return None
    return form


def _own_profile(session: Session, user: User, callnow_id: str) -> Profile | None:
    return next(
        (p for p in profiles.owned_by(session, user.id) if p.callnow_id == callnow_id), None
    )


def _owner_and_profile(
    request: Request, session: Session, callnow_id: str
) -> tuple[User, Profile] | Response:
    """The logged-in owner and their page `callnow_id`, or the response to send instead."""
    user = current_user(request, session)
    if user is None:
        return _to_login()
    profile = _own_profile(session, user, callnow_id)
    if profile is None:
        return _render(request, "missing.html", user, status_code=404)
    return user, profile


def share_urls(request: Request, profile: Profile) -> dict[str, str]:
    base = app_state(request).settings.web.public_base_url.rstrip("/")
    return {
        "path": f"{base}/callnow/{quote(profile.callnow_id)}",
        "query": f"{base}/callnow?id={quote(profile.callnow_id)}",
        "one_step": f"{base}/callnow/{quote(profile.callnow_id)}?name=NAME&number=NUMBER",
    }


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: UnitOfWork) -> Response:
    return _render(request, "login.html", None, error=None, email="", captcha_token=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    form = _checked_form(request, posted)
    email = forms.field(form, "email", 254) if form is not None else ""
    if form is None:
        return _render(
            request,
            "login.html",
            None,
            error="Please try again.",
            email=email,
            captcha_token=None,
            status_code=400,
        )
    state, now, address = app_state(request), utcnow(), client_address(request)
    attempt = sign_in.attempt_login(
        state,
        session,
        email=email,
        password=forms.field(form, "password", 256),
        address=address,
        captcha_token=forms.field(form, "captcha_token", 64),
        captcha_answer=forms.field(form, "captcha_answer", 20),
        may_enter="anyone",
        now=now,
    )
    if attempt.user is None:
        return _render(
            request,
            "login.html",
            None,
            error=attempt.message,
            email=email,
            captcha_token=attempt.captcha_token,
            status_code=429 if attempt.outcome == "refused" else 401,
        )
    # A session this browser held before (perhaps fixed by someone else) ends; a new one starts.
    old = web_session(request, session)
    if old is not None:
        web_sessions.revoke(session, old, now)
    token = sign_in.start_session(session, attempt.user, "portal", request, address, now)
    response = RedirectResponse("/portal", status_code=303)
    sign_in.set_cookie(
        response,
        state.settings,
        SESSION_COOKIE,
        token,
        path="/",
        max_age=state.settings.web.session_absolute_s,
    )
    sign_in.clear_cookie(response, state.settings, LOGIN_COOKIE, path="/portal")
    return response


@router.post("/logout")
def logout(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    """Ends this session, only with the session's form token: a cross-site post does nothing."""
    row = web_session(request, session)
    if row is None:
        return _to_login()
    if _checked_form(request, posted) is None:
        return RedirectResponse("/portal", status_code=303)
    web_sessions.revoke(session, row, utcnow())
    response = _to_login()
    sign_in.clear_cookie(response, app_state(request).settings, SESSION_COOKIE, path="/")
    return response


def _login_captcha(request: Request, session: Session, token: str, kind: str) -> Response:
    book = app_state(request).safeguards.captcha
    render = book.image if kind == "png" else book.audio
    data = render(session, token, sign_in.LOGIN_CAPTCHA_PROFILE, utcnow())
    if data is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    media_type = "image/png" if kind == "png" else "audio/wav"
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.get("/login/captcha/{token}.png")
def login_captcha_image(request: Request, token: str, session: UnitOfWork) -> Response:
    """The picture of a login CAPTCHA challenge (while an account is under attack)."""
    return _login_captcha(request, session, token, "png")


@router.get("/login/captcha/{token}.wav")
def login_captcha_audio(request: Request, token: str, session: UnitOfWork) -> Response:
    return _login_captcha(request, session, token, "wav")


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _home(request, session, user)


def _home(
    request: Request,
    session: Session,
    user: User,
    *,
    embed_errors: dict[str, dict[str, str]] | None = None,
    embed_values: dict[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The home page; a refused button setting shows its messages and what was typed."""
    base = app_state(request).settings.web.public_base_url
    owned = profiles.owned_by(session, user.id)
    pages = []
    for profile in owned:
        urls = share_urls(request, profile)
        qr = segno.make(urls["path"], error="m").svg_inline(scale=4, title="QR code for the page")
        paused = is_paused(profile.paused_until, utcnow())
        pages.append(
            {
                "profile": profile,
                "urls": urls,
                "qr": qr,
                "paused": paused,
                "signature_html": share_kit.signature_html(urls["path"]),
                "signature_text": share_kit.signature_text(urls["path"]),
                "embed": profiles.embed_of(profile),
                "snippet": embed.snippet(
                    base, profile.callnow_id, profiles.embed_of(profile).label
                ),
                "embed_errors": (embed_errors or {}).get(profile.callnow_id, {}),
                "embed_values": (embed_values or {}).get(profile.callnow_id),
            }
        )
    recent = request_store.recent_for_profiles(session, [p.id for p in owned], limit=10)
    return _render(
        request,
        "home.html",
        user,
        pages=pages,
        recent=recent,
        texts=VISITOR_TEXT,
        RequestState=RequestState,
        qr_sizes=share_kit.SIZES,
        embed_positions=POSITIONS,
        max_origins=MAX_ORIGINS,
        status_code=status_code,
    )


@router.post("/profiles/{callnow_id}/embed")
def embed_settings(
    request: Request, callnow_id: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    """The owner sets the sites that may show their page in the button's overlay, and the
    button's label, colour and position."""
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    form = _checked_form(request, posted)
    if form is None:
        return RedirectResponse("/portal", status_code=303)
    fields = page_settings.EmbedFields(
        # Bounded generously: ten origins of 200 characters and their separators.
        origins=forms.field(form, "embed_origins", MAX_ORIGINS * 220),
        label=forms.field(form, "embed_label", 200),
        colour=forms.field(form, "embed_colour", 20),
        position=forms.field(form, "embed_position", 20),
    )
    details = {k: v for k, v in form.items() if k != "csrf"}
    try:
        page_settings.change_page(
            session,
            profile,
            page_settings.PageChanges(embed=fields),
            actor=user,
            via="portal",
            details=details,
        )
    except page_settings.InvalidChanges as invalid:  # nothing was changed
        typed = {
            "origins": fields.origins,
            "label": fields.label,
            "colour": fields.colour,
            "position": fields.position,
        }
        return _home(
            request,
            session,
            user,
            embed_errors={profile.callnow_id: invalid.errors},
            embed_values={profile.callnow_id: typed},
            status_code=422,
        )
    return RedirectResponse(f"/portal#embed-{quote(profile.callnow_id)}", status_code=303)


@router.get("/profiles/{callnow_id}/qr.{kind}")
def qr_download(
    request: Request, callnow_id: str, kind: str, session: UnitOfWork, size: str = "card"
) -> Response:
    """The page's QR code as a file to print: SVG or PNG, business-card or poster size."""
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    _, profile = found
    if kind not in share_kit.KINDS or size not in share_kit.SIZES:
        return Response(
            f"Choose qr.svg or qr.png with size={' or size='.join(share_kit.SIZES)}.",
            status_code=422,
            media_type="text/plain",
        )
    data = share_kit.qr_file(share_urls(request, profile)["path"], kind, size)
    filename = f"callnow-{profile.callnow_id}-{size}.{kind}"
    return Response(
        data,
        media_type=share_kit.KINDS[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/profiles/{callnow_id}/resume")
def resume_page(
    request: Request, callnow_id: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    """The owner lifts a pause the spike detector set."""
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    if _checked_form(request, posted) is not None and profile.paused_until is not None:
        profile.paused_until = None
        audit.record_for_page(session, profile, actor=user, action="profile.resumed", via="portal")
    return RedirectResponse("/portal", status_code=303)


@router.get("/requests", response_class=HTMLResponse)
def request_list(request: Request, session: UnitOfWork, page: int = 1) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    page = max(1, min(page, 10_000))
    owned = profiles.owned_by(session, user.id)
    items = request_store.recent_for_profiles(
        session, [p.id for p in owned], limit=50, offset=(page - 1) * 50
    )
    booked = scheduling.upcoming_for(session, [p.id for p in owned], utcnow())
    return _render(request, "requests.html", user, items=items, page=page, booked=booked)


@router.post("/profiles/{callnow_id}/scheduling", response_class=HTMLResponse)
def scheduling_settings(
    request: Request, callnow_id: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    """The owner turns booking a time on or off, and bounds how far ahead and how many per
    time (a form of its own on the preferences page)."""
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    form = _checked_form(request, posted)
    if form is None:
        return RedirectResponse(f"/portal/profiles/{quote(profile.callnow_id)}/preferences", 303)
    typed = {
        "days_ahead": forms.field(form, "scheduling_days_ahead", 10),
        "per_slot": forms.field(form, "scheduling_per_slot", 10),
    }
    errors = scheduling.change_settings(
        session,
        profile,
        enabled=bool(forms.field(form, "scheduling_enabled", 10)),
        days_ahead=typed["days_ahead"],
        per_slot=typed["per_slot"],
        actor=user,
        via="portal",
    )
    if errors:
        return _preferences(
            request,
            session,
            user,
            profile,
            errors={},
            saved=False,
            status_code=422,
            scheduling_errors=errors,
            scheduling_typed=typed,
        )
    url = f"/portal/profiles/{quote(profile.callnow_id)}/preferences?booking=saved#booking"
    return RedirectResponse(url, status_code=303)


@router.get("/profiles/{callnow_id}/preferences", response_class=HTMLResponse)
def preferences_page(request: Request, callnow_id: str, session: UnitOfWork) -> Response:
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    return _preferences(request, session, user, profile, errors={}, saved=False)


# The hours editor: each weekday has this many rows (7 x 3 = MAX_WINDOWS); without scripts
# the filled rows and one blank row show, and a script adds and removes rows in place.
ROWS_PER_DAY = MAX_WINDOWS // len(WEEKDAYS)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# What an hours row holds as the owner typed it: (start, end), "HH:MM" or "".
HoursRows = dict[int, list[tuple[str, str]]]


@cache
def _timezones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _clock(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


def _stored_rows(profile: Profile) -> HoursRows:
    rows: HoursRows = {day: [] for day in range(len(WEEKDAYS))}
    for w in sorted(profile.windows, key=lambda w: (w.weekday, w.start_minute)):
        rows[w.weekday].append((_clock(w.start_minute), _clock(w.end_minute)))
    return rows


def _preferences(
    request: Request,
    session: Session,
    user: User,
    profile: Profile,
    *,
    errors: dict[str, str],
    saved: bool,
    status_code: int = 200,
    posted: HoursRows | None = None,
    timezone: str | None = None,
    **booking: object,
) -> HTMLResponse:
    filled = posted if posted is not None else _stored_rows(profile)
    days = []
    for day, name in enumerate(DAY_NAMES):
        rows = [r for r in filled.get(day, []) if r != ("", "")][:ROWS_PER_DAY]
        shown = min(ROWS_PER_DAY, len(rows) + 1)
        rows += [("", "")] * (ROWS_PER_DAY - len(rows))
        days.append({"index": day, "name": name, "rows": rows, "shown": shown})
    return _render(
        request,
        "preferences.html",
        user,
        profile=profile,
        days=days,
        timezones=_timezones(),
        chosen_timezone=profile.timezone or "" if timezone is None else timezone,
        errors=errors,
        saved=saved,
        urls=share_urls(request, profile),
        retired=retired_ids.retired_by(session, profile.id),
        tenant_timezone=profile.extension.tenant.timezone,
        status_code=status_code,
        **booking,
    )


def _hours_rows(form: FormData) -> HoursRows:
    """Every hours row as posted, by weekday; fields are bounded to a time's length."""
    return {
        day: [
            (
                forms.field(form, f"win_{day}_{row}_start", 8),
                forms.field(form, f"win_{day}_{row}_end", 8),
            )
            for row in range(ROWS_PER_DAY)
        ]
        for day in range(len(WEEKDAYS))
    }


def _window_rows(rows: HoursRows) -> list[page_settings.WindowFields] | str:
    """The filled-in windows (blank rows skipped), or what is wrong with a half-filled one."""
    windows = []
    for day, day_rows in rows.items():
        for number, (start, end) in enumerate(day_rows, start=1):
            if not start and not end:
                continue
            if not (start and end):
                return f"{DAY_NAMES[day]}, window {number}: give both a start and an end."
            # <input type=time> may send seconds ("09:00:00"); windows are whole minutes.
            windows.append(page_settings.WindowFields(day, start[:5], end[:5]))
    return windows


@router.post("/profiles/{callnow_id}/preferences", response_class=HTMLResponse)
def save_preferences(
    request: Request, callnow_id: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    form = _checked_form(request, posted)
    if form is None:
        return _preferences(
            request,
            session,
            user,
            profile,
            saved=False,
            status_code=400,
            errors={"form": "The form expired; please try again."},
        )
    posted_rows = _hours_rows(form)
    timezone = forms.field(form, "timezone", 64)
    rows = _window_rows(posted_rows)
    if isinstance(rows, str):
        return _preferences(
            request,
            session,
            user,
            profile,
            errors={"windows": rows},
            saved=False,
            status_code=422,
            posted=posted_rows,
            timezone=timezone,
        )
    changes = page_settings.PageChanges(
        callnow_id=forms.field(form, "callnow_id", 64),
        rename_confirmed=forms.checkbox(form, "confirm_rename"),
        switches={name: forms.checkbox(form, name) for name in page_settings.SWITCHES},
        welcome_message=forms.field(form, "welcome_message", WELCOME_MAX_CHARS + 1),
        timezone=timezone,
        windows=rows,
        display_name=(
            forms.field(form, "display_name", page_settings.DISPLAY_NAME_MAX_CHARS + 1)
            if "display_name" in form
            else None  # a form without the field leaves the name as it is
        ),
    )
    details = {k: v for k, v in form.items() if k != "csrf"}
    try:
        page_settings.change_page(
            session, profile, changes, actor=user, via="portal", details=details
        )
    except page_settings.InvalidChanges as invalid:  # nothing was changed
        return _preferences(
            request,
            session,
            user,
            profile,
            errors=invalid.errors,
            saved=False,
            status_code=422,
            posted=posted_rows,
            timezone=timezone,
        )
    return _preferences(request, session, user, profile, errors={}, saved=True)


@router.get("/profiles/{callnow_id}/rules", response_class=HTMLResponse)
def rules_page(request: Request, callnow_id: str, session: UnitOfWork) -> Response:
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    return _rules(request, user, profile, error=None)


def _rules(
    request: Request, user: User, profile: Profile, *, error: str | None, status_code: int = 200
) -> HTMLResponse:
    return _render(
        request,
        "rules.html",
        user,
        profile=profile,
        rules=profiles.rules_of(profile),
        error=error,
        status_code=status_code,
    )


@router.post("/profiles/{callnow_id}/rules", response_class=HTMLResponse)
def change_rules(
    request: Request, callnow_id: str, posted: forms.PostedForm, session: UnitOfWork
) -> Response:
    found = _owner_and_profile(request, session, callnow_id)
    if isinstance(found, Response):
        return found
    user, profile = found
    form = _checked_form(request, posted)
    if form is None:
        return _rules(
            request, user, profile, error="The form expired; please try again.", status_code=400
        )
    current = profiles.rules_of(profile)
    operation = forms.field(form, "op", 10)
    try:
        index = int(forms.field(form, "index", 4) or -1)
    except ValueError:
        index = -1
    fields = page_settings.RuleFields(
        forms.field(form, "action", 10),
        forms.field(form, "number_match", 16),
        forms.field(form, "number_value", 40),
        forms.field(form, "name_match", 16),
        forms.field(form, "name_value", 80),
    )
    try:
        if operation == "add":
            current.append(page_settings.parse_rule(profile, fields))
        elif operation == "edit" and 0 <= index < len(current):
            current[index] = page_settings.parse_rule(profile, fields)
        elif operation == "delete" and 0 <= index < len(current):
            current.pop(index)
        elif operation == "up" and 0 < index < len(current):
            current[index - 1], current[index] = current[index], current[index - 1]
        elif operation == "down" and 0 <= index < len(current) - 1:
            current[index + 1], current[index] = current[index], current[index + 1]
        else:
            return _rules(request, user, profile, error="Unknown change.", status_code=400)
        page_settings.set_rules(
            session, profile, current, actor=user, via="portal", action=f"rules.{operation}"
        )
    except InvalidRule as exc:
        return _rules(request, user, profile, error=str(exc), status_code=422)
    return RedirectResponse(f"/portal/profiles/{profile.callnow_id}/rules", status_code=303)


@router.get("/api-keys", response_class=HTMLResponse)
def api_keys_page(request: Request, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _render(
        request, "api_keys.html", user, keys=accounts.keys_of(session, user.id), new_secret=None
    )


@router.post("/api-keys", response_class=HTMLResponse)
def change_api_keys(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    form = _checked_form(request, posted)
    if form is None:
        return RedirectResponse("/portal/api-keys", status_code=303)
    new_secret = None
    if forms.field(form, "op", 10) == "create":
        new_secret = accounts.issue_api_key(session, user, forms.field(form, "label", 60)).secret
    elif forms.field(form, "op", 10) == "revoke":
        key_id = forms.field(form, "key_id", 16)
        for key in accounts.keys_of(session, user.id):
            if key.key_id == key_id and key.revoked_at is None:
                key.revoked_at = utcnow()
    session.flush()
    return _render(
        request,
        "api_keys.html",
        user,
        keys=accounts.keys_of(session, user.id),
        new_secret=new_secret,
    )
