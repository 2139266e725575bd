"""The ASGI application: public pages, owner portal, platform admin and the Call API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from callnow import __version__
from callnow.config import Settings
from callnow.domain.destination_policy import PrefixList
from callnow.store.db import make_engine, make_session_factory
from callnow.web import (
    api,
    billing_api,
    billing_portal,
    live,
    owner_live,
    portal,
    public,
    queue_wakeup,
    webhook_portal,
)
from callnow.web.captcha import CaptchaBook
from callnow.web.context import SESSION_ENDERS, AppState
from callnow.web.intake import Safeguards
from callnow.web.middleware import (
    LimitsMiddleware,
    PublicLoadShedding,
    SecurityHeadersMiddleware,
)
from callnow.web.throttle import Throttle

SESSION_MAX_AGE_S = 12 * 3600
# The in-process engine's own pool: dispatcher, recorder, housekeeping and webhook sender.
ENGINE_CONNECTIONS = 10


@asynccontextmanager
async def engine_in_this_process(
    settings: Settings, sessions: sessionmaker[Session], state: AppState
) -> AsyncIterator[None]:
    from callnow.engine.runtime import EngineRuntime

    # The engine writes through a pool of its own, urgent on SQLite: its records never wait for
    # a free web connection nor behind the web's writers. This process's web wakes it directly.
    engine_pool = make_engine(
        settings.effective_database_url, connections=ENGINE_CONNECTIONS, urgent=True
    )
    runtime = await EngineRuntime.start(
        settings, make_session_factory(engine_pool), woken_in_process_by=queue_wakeup.sender()
    )
    state.wake = runtime.dispatcher.wake
    state.engine_status = lambda: "running" if runtime.dispatcher.claiming else "stopped"
    try:
        yield
    finally:
        state.wake = queue_wakeup.nobody
        await runtime.stop()
        engine_pool.dispose()


@asynccontextmanager
async def engine_in_child_process(settings: Settings, state: AppState) -> AsyncIterator[None]:
    """The web serves once the engine takes calls; it stops the engine before it exits.

    Requests reach the engine through the database (and NOTIFY on PostgreSQL). While a crashed
    engine is started again, the web goes on taking requests: they wait, queued.
    """
    from callnow.engine.child import EngineChild

    child = EngineChild(settings)
    await asyncio.to_thread(child.start)
    state.engine_status = lambda: child.status
    try:
        yield
    finally:
        await asyncio.to_thread(child.stop)


def create_app(settings: Settings, *, with_engine: bool = False) -> FastAPI:
    """The web app; with `with_engine`, it also runs the call engine while it serves: in this
    process (the embedded default), or in a child process (`settings.engine_in_own_process`)."""
    if not settings.web.secret_key:
        raise ValueError("web.secret_key must be set (callnow serve generates one)")
    # Every route thread and every session waiting for its commit can hold a connection at once,
    # so no thread ever waits for the pool (see `context._unit_of_work`).
    engine = make_engine(
        settings.effective_database_url,
        connections=settings.web.worker_threads + SESSION_ENDERS,
    )
    sessions = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes and dependencies run on anyio's default threads; bound them with the pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web.worker_threads
        try:
            if not with_engine:
                yield
            elif settings.engine_in_own_process:
                async with engine_in_child_process(settings, state):
                    yield
            else:
                async with engine_in_this_process(settings, sessions, state):
                    yield
        finally:
            await state.status_board.close()

    app = FastAPI(
        lifespan=lifespan,
        title="CallNow Call API",
        version=__version__,
        description="Callback requests for hosted PBX extensions.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    safeguards = Safeguards(
        throttle=Throttle(settings.abuse),
        platform_prefixes=PrefixList(
            blocked=tuple(settings.abuse.blocked_prefixes),
            allowed=tuple(settings.abuse.allowed_prefixes),
        ),
        captcha=CaptchaBook(settings.web.secret_key, settings.abuse.captcha_ttl_s),
        decline_cooldown=timedelta(seconds=settings.requests.decline_cooldown_s),
    )
    state = AppState(settings=settings, sessions=sessions, safeguards=safeguards)
    app.state.callnow = state
    queue_wakeup.install(sessions, lambda: state.wake)
    app.state.engine = engine
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    app.include_router(public.router)
    app.include_router(portal.router)
    app.include_router(api.router)
    app.include_router(billing_portal.router)
    app.include_router(billing_api.router)
    app.include_router(live.router)
    app.include_router(owner_live.router)
    app.include_router(webhook_portal.router)
    from callnow.web import admin

    admin.mount(app, engine, settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.web.secret_key,
        session_cookie="callnow_session",
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=settings.web.public_base_url.startswith("https://"),
    )
    app.add_middleware(
        PublicLoadShedding,
        max_in_flight=settings.web.public_max_in_flight,
        queue_wait_s=settings.web.public_queue_wait_s,
    )
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.web.max_body_bytes,
        max_query_bytes=settings.web.max_query_bytes,
    )
    # Outermost, so every answer carries the headers, refusals included.
    app.add_middleware(SecurityHeadersMiddleware)
    return app
