"""The ASGI application: public pages, owner portal, platform admin and the Call API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles

from callnow import __version__
from callnow.config import Settings
from callnow.domain.destination_policy import PrefixList
from callnow.metrics import Metrics
from callnow.services.captcha import CaptchaBook
from callnow.services.intake import Safeguards
from callnow.services.throttle import Throttle
from callnow.store import wakeup
from callnow.store.db import make_engine, make_session_factory
from callnow.web import (
    api,
    billing_api,
    billing_portal,
    booking,
    live,
    mail_links,
    notify_portal,
    owner_live,
    portal,
    portal_sessions,
    provider_api,
    public,
    site,
    visitor_messages,
    webhook_portal,
)
from callnow.web.context import SESSION_ENDERS, AppState, templates
from callnow.web.middleware import (
    LimitsMiddleware,
    PublicLoadShedding,
    SecurityHeadersMiddleware,
)

# Runs an engine (and the metrics listener) for as long as the app serves, given the app's
# state to wire wake-ups, health and draining into.
EngineLifespan = Callable[[AppState], AbstractAsyncContextManager[None]]


def build_app(
    settings: Settings,
    *,
    engine_lifespan: EngineLifespan | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The web app: routes, middleware and the database pool it serves from.

    `engine_lifespan`, given by the composition root, runs whatever engine serves alongside
    (in this process or a child) while the app serves; the web never starts one itself.
    """
    if not settings.web.secret_key:
        raise ValueError("web.secret_key must be set (callnow serve generates one)")
    # Every route thread, public page thread and session waiting for its commit can hold a
    # connection at once, so no thread ever waits for the pool (see `context._unit_of_work`).
    engine = make_engine(
        settings.effective_database_url,
        connections=settings.web.worker_threads + settings.public_threads + SESSION_ENDERS,
    )
    sessions = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes and dependencies run on anyio's default threads; bound them with the pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web.worker_threads
        build_route_handlers(app)
        try:
            if engine_lifespan is None:
                yield
            else:
                async with engine_lifespan(state):
                    yield
        finally:
            await state.public_work.drain()
            await state.status_board.close()

    app = FastAPI(
        lifespan=lifespan,
        title="CallNow Call API",
        version=__version__,
        description="Callback requests for hosted PBX extensions.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    metrics = metrics or Metrics("web")
    safeguards = Safeguards(
        throttle=Throttle(settings.abuse, sessions, on_refused=metrics.refused),
        platform_prefixes=PrefixList(
            blocked=tuple(settings.abuse.blocked_prefixes),
            allowed=tuple(settings.abuse.allowed_prefixes),
        ),
        captcha=CaptchaBook(settings.web.secret_key, settings.abuse.captcha_ttl_s),
        decline_cooldown=timedelta(seconds=settings.requests.decline_cooldown_s),
        spike_captcha=timedelta(minutes=settings.abuse.spike_captcha_minutes),
        counted=metrics.request_taken,
    )
    state = AppState(settings=settings, sessions=sessions, safeguards=safeguards)
    app.state.callnow = state
    wakeup.install(sessions, lambda: state.wake)
    app.state.engine = engine
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    site.install(app, app.openapi_url or "")
    public.install(app)
    app.include_router(portal.router)
    app.include_router(api.router)
    app.include_router(provider_api.router)
    app.include_router(billing_portal.router)
    app.include_router(billing_api.router)
    app.include_router(live.router)
    # The status page is rendered by `public.request_status`, which does not know about
    # cancelling: a template global lets status.html ask for the cancel form's token.
    templates.env.globals["cancel_form_token"] = live.cancel_form_token
    app.include_router(visitor_messages.router)
    templates.env.globals["message_form_token"] = visitor_messages.message_form_token
    # Booking a time: its page, and what the public and status pages offer or show of it.
    app.include_router(booking.router)
    templates.env.globals["booking_facts"] = booking.booking_facts
    templates.env.globals["booking_offered"] = booking.booking_offered
    app.include_router(owner_live.router)
    app.include_router(webhook_portal.router)
    app.include_router(mail_links.router)
    app.include_router(notify_portal.router)
    app.include_router(portal_sessions.router)
    from callnow.web import admin

    admin.mount(app, engine, state)
    app.add_middleware(
        PublicLoadShedding,
        max_in_flight=settings.web.public_max_in_flight,
        queue_wait_s=settings.web.public_queue_wait_s,
        on_shed=lambda: metrics.refused("load_shedding"),
    )
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.web.max_body_bytes,
        max_query_bytes=settings.web.max_query_bytes,
    )
    # Outermost, so every answer carries the headers, refusals included.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(site.HeadAsGet)
    return app


def build_route_handlers(app: FastAPI) -> None:
    """Prepare every route's handler now, before the first request.

    FastAPI builds the routes of an included router (their dependencies and models) when the
    first request walks through that router, on the event loop: 30-40 ms of CPU for the API's
    routes, during which no other connection is served (0.2 s on a loaded machine when the first
    health check came with a flood). Walking the route list once at start-up builds them all.
    """
    for _ in iter_route_contexts(app.routes):
        pass
