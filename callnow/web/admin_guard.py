"""What guards the platform admin (sqladmin): sessions, login throttle, CSRF, headers, audit.

`AdminGate` wraps the admin's own Starlette app. For every request it looks the session cookie up
once (a random token; see `web.sign_in`), gives sqladmin a session dict that lives for this
request only (so no cookie carries data), refuses unsafe methods without this session's CSRF
token, and adds the security headers `SecurityHeadersMiddleware` leaves to it. Logins go through
the same gates as the portal's and are audited; logging out is a POST with the token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqladmin.authentication import AuthenticationBackend
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callnow.config import Settings
from callnow.services.throttle import source_network
from callnow.store import audit, web_sessions
from callnow.store.models import utcnow
from callnow.web import forms, sign_in
from callnow.web.context import AppState, client_address

SESSION_COOKIE = "callnow_admin"
LOGIN_COOKIE = "callnow_admin_login"
COOKIE_PATH = "/admin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SCOPE_KEY = "callnow.admin"

# sqladmin styles some widgets from its scripts (inline style attributes), but runs no inline
# script of ours or its own on these pages.
ADMIN_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; font-src 'self' data:; "
        b"style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]


@dataclass(frozen=True)
class Seat:
    """The live admin session a request belongs to (plain values, no database object)."""

    session_id: int
    user_id: int
    csrf_key: str


@dataclass
class AdminRequest:
    seat: Seat | None
    nonce: str | None
    # Cookies to send with the answer: name -> (value, max age); an empty value deletes.
    cookies: dict[str, tuple[str, int]] = field(default_factory=dict)


def admin_request(request: Request) -> AdminRequest:
    found: AdminRequest = request.scope[_SCOPE_KEY]
    return found


def _purpose(found: AdminRequest) -> str | None:
    if found.seat is not None:
        return f"admin:{found.seat.session_id}:{found.seat.csrf_key}"
    return f"admin-login:{found.nonce}" if found.nonce else None


def csrf_token(request: Request) -> str:
    """A token for a form on this admin page (a template global); starts a login nonce if none."""
    found = admin_request(request)
    if _purpose(found) is None:
        found.nonce = sign_in.new_nonce()
        found.cookies[LOGIN_COOKIE] = (found.nonce, forms.FORM_TOKEN_MAX_AGE_S)
    state: AppState = request.app.state.callnow
    return forms.FormTokens(state.settings.web.secret_key).issue(_purpose(found) or "")


class AdminGate:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self._state = state
        self._tokens = forms.FormTokens(state.settings.web.secret_key)

    def _seat(self, token: str) -> Seat | None:
        with self._state.sessions() as session, session.begin():
            row = sign_in.find_session(self._state, session, token, "admin", utcnow())
            return Seat(row.id, row.user_id, row.csrf_key) if row is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get(SESSION_COOKIE, "")
        seat = await anyio.to_thread.run_sync(self._seat, token) if token else None
        found = AdminRequest(seat, sign_in.cookie_nonce(request.cookies.get(LOGIN_COOKIE)))
        if token and seat is None:
            found.cookies[SESSION_COOKIE] = ("", 0)  # ended or never ours: forget it
        scope[_SCOPE_KEY] = found
        scope["session"] = {}  # sqladmin's flash messages: this request only, never a cookie

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for header, value in ADMIN_HEADERS:
                    headers[header.decode()] = value.decode()
                for name, (cookie, max_age) in found.cookies.items():
                    headers.append(
                        "set-cookie", _cookie_header(self._state.settings, name, cookie, max_age)
                    )
            await send(message)

        if scope["method"] in _UNSAFE:
            body = await _read_body(receive)
            if not await self._valid_token(scope, body, found):
                refusal = PlainTextResponse(
                    "The form expired or came from another site; reload the page and try again.",
                    status_code=403,
                )
                await refusal(scope, _replay(b""), with_headers)
                return
            receive = _replay(body)
        await self.app(scope, receive, with_headers)

    async def _valid_token(self, scope: Scope, body: bytes, found: AdminRequest) -> bool:
        purpose = _purpose(found)
        if purpose is None:
            return False
        request = Request(scope, _replay(body))
        presented = request.headers.get(CSRF_HEADER, "")
        content_type = request.headers.get("content-type", "")
        if not presented and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form(max_files=10, max_fields=200)
            presented = forms.field(form, CSRF_FIELD, 300)
        return self._tokens.valid(presented, purpose)


async def _read_body(receive: Receive) -> bytes:
    """The whole body (bounded before it gets here by `LimitsMiddleware`)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _cookie_header(settings: Settings, name: str, value: str, max_age: int) -> str:
    response = Response()
    if value:
        sign_in.set_cookie(response, settings, name, value, path=COOKIE_PATH, max_age=max_age)
    else:
        sign_in.clear_cookie(response, settings, name, path=COOKIE_PATH)
    return response.headers["set-cookie"]


class PlatformAdminAuth(AuthenticationBackend):
    """Only platform admins; the same login gates as the portal; every login attempt audited."""

    def __init__(self, state: AppState) -> None:
        # No cookie session middleware: `AdminGate` carries the session.
        self.middlewares = []
        self._state = state
        self.templates: Any = None  # the admin's templates, set by `admin.mount`

    def _login(self, request: Request, form: dict[str, str], address: str) -> sign_in.Attempt:
        now = utcnow()
        with self._state.sessions() as session, session.begin():
            attempt = sign_in.attempt_login(
                self._state,
                session,
                email=form["username"],
                password=form["password"],
                address=address,
                captcha_token=form["captcha_token"],
                captcha_answer=form["captcha_answer"],
                may_enter="platform_admin",
                now=now,
            )
            network = source_network(address)
            if attempt.user is not None:
                audit.record(
                    session,
                    actor=attempt.user,
                    action="admin.login",
                    subject=attempt.user.email,
                    details={"network": network},
                    via="admin",
                )
                token = sign_in.start_session(session, attempt.user, "admin", request, address, now)
                found = admin_request(request)
                found.cookies[SESSION_COOKIE] = (token, self._state.settings.web.session_absolute_s)
                found.cookies[LOGIN_COOKIE] = ("", 0)
            elif attempt.outcome != "refused":
                # Refused attempts check nothing and are not written: a flood adds no rows.
                audit.record(
                    session,
                    actor=None,
                    action="admin.login_failed",
                    subject=form["username"][:80],
                    details={"network": network, "outcome": attempt.outcome},
                    via="admin",
                )
        return attempt

    async def login(self, request: Request) -> Response | bool:
        posted = await request.form(max_files=0, max_fields=10)
        form = {
            "username": forms.field(posted, "username", 254),
            "password": forms.field(posted, "password", 256),
            "captcha_token": forms.field(posted, "captcha_token", 64),
            "captcha_answer": forms.field(posted, "captcha_answer", 20),
        }
        address = client_address(request)
        attempt = await anyio.to_thread.run_sync(self._login, request, form, address)
        if attempt.user is not None:
            return True
        response: Response = await self.templates.TemplateResponse(
            request,
            "sqladmin/login.html",
            {
                "error": attempt.message,
                "captcha_token": attempt.captcha_token,
                "username": form["username"],
            },
            status_code=429 if attempt.outcome == "refused" else 400,
        )
        return response

    async def logout(self, request: Request) -> Response | bool:
        """GET only (sqladmin's link): asks to confirm with a POST form; ends nothing itself."""
        response: Response = await self.templates.TemplateResponse(request, "sqladmin/logout.html")
        return response

    async def authenticate(self, request: Request) -> Response | bool:
        return admin_request(request).seat is not None

    async def get_user_id(self, request: Request) -> Any:
        seat = admin_request(request).seat
        return seat.user_id if seat is not None else None


async def end_admin_session(request: Request) -> Response:
    """POST /admin/logout (its CSRF token checked by `AdminGate`): ends this session."""
    found = admin_request(request)
    state: AppState = request.app.state.callnow
    if found.seat is not None:
        seat = found.seat

        def revoke() -> None:
            with state.sessions() as session, session.begin():
                row = web_sessions.owned(session, seat.user_id, seat.session_id)
                if row is not None:
                    web_sessions.revoke(session, row, utcnow())

        await anyio.to_thread.run_sync(revoke)
    found.cookies[SESSION_COOKIE] = ("", 0)
    return RedirectResponse(request.url_for("admin:login"), status_code=303)
