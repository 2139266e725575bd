"""ASGI middleware: bounded requests, load shedding on public pages, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(frame_ancestors: str = "frame-ancestors 'none'") -> bytes:
    """The one policy of every page; only the embed variant names who may frame it."""
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"{frame_ancestors}; form-action 'self'; base-uri 'none'"
    ).encode()


CSP = b"content-security-policy"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (CSP, content_security_policy()),
]


async def _plain(
    send: Send, status: int, text: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# All request headers together; browsers send a few KiB at most (cookies included).
MAX_HEADER_BYTES = 16 * 1024


class LimitsMiddleware:
    """Refuse oversized query strings, headers and bodies before any route reads them."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_query_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_query = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_query:
            await _plain(send, 414, "The address is too long.")
            return
        header_bytes = 0
        for name, value in scope.get("headers", []):
            header_bytes += len(name) + len(value) + 4
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await _plain(send, 413, "The request is too large.")
                return
        if header_bytes > MAX_HEADER_BYTES:
            await _plain(send, 431, "The request's headers are too large.")
            return
        received = 0
        max_body = self.max_body

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except BodyTooLarge:
            await _plain(send, 413, "The request is too large.")


class BodyTooLarge(Exception):
    pass


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope.get("path", "").startswith(("/docs", "/admin"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and not is_docs:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if CSP in present:
                    # A page with its own policy (the embed variant) states its framing there;
                    # X-Frame-Options cannot name several sites, so it stays out.
                    present.add(b"x-frame-options")
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class PublicLoadShedding:
    """Serve at most `max_in_flight` public-page requests at once; refuse the rest quickly.

    A flood of form posts must not take every thread and connection from health checks, the
    owner's portal and the engine. Requests beyond the limit wait up to `queue_wait_s` for a
    turn, then get 503 with Retry-After, which a visitor's browser shows as "try again".
    Status streams (`.../events`) stay open for minutes and are bounded elsewhere.
    """

    RETRY_AFTER_S = 5

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int,
        queue_wait_s: float,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.on_shed = on_shed
        self.max_in_flight = max_in_flight
        self.queue_wait_s = queue_wait_s
        self._turns: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/callnow") or path.endswith("/events"):
            await self.app(scope, receive, send)
            return
        if self._turns is None:  # made on first use: it belongs to the running loop
            self._turns = asyncio.Semaphore(self.max_in_flight)
        try:
            if self._turns.locked():  # only then wait: wait_for costs a task and a timer
                await asyncio.wait_for(self._turns.acquire(), self.queue_wait_s)
            else:
                await self._turns.acquire()
        except TimeoutError:
            if self.on_shed is not None:
                self.on_shed()
            await _plain(
                send,
                503,
                "Too many people are asking right now. Please try again in a few seconds.",
                extra_headers=[(b"retry-after", str(self.RETRY_AFTER_S).encode())],
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._turns.release()
