"""The composition root: builds the service's processes from the settings.

It alone wires the web to an engine: the web app is assembled by `web.app.build_app`, and the
engine (in this process or a child process) is started here for as long as the app serves. It
also makes the process's `Metrics`, hands it to the parts that count, and serves it on the
metrics listener when `metrics.enabled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from callnow.config import Settings
from callnow.metrics import Metrics
from callnow.store import wakeup
from callnow.store.db import make_engine, make_session_factory, pool_use
from callnow.web.app import EngineLifespan, build_app
from callnow.web.context import AppState, TrunkRegistration

# The in-process engine's own pool: dispatcher, recorder, housekeeping and webhook sender.
ENGINE_CONNECTIONS = 10
# Beyond the drain time: how long the engine child gets to hang up and record what is left.
ENGINE_STOP_MARGIN_S = 30.0


@asynccontextmanager
async def engine_in_this_process(
    settings: Settings, sessions: sessionmaker[Session], state: AppState, metrics: Metrics
) -> AsyncIterator[None]:
    from callnow.engine.runtime import EngineRuntime

    # The engine writes through a pool of its own, urgent on SQLite: its records never wait for
    # a free web connection nor behind the web's writers. This process's web wakes it directly.
    engine_pool = make_engine(
        settings.effective_database_url, connections=ENGINE_CONNECTIONS, urgent=True
    )
    metrics.watch_pool("engine", pool_use(engine_pool))
    runtime = await EngineRuntime.start(
        settings,
        make_session_factory(engine_pool),
        woken_in_process_by=wakeup.sender(),
        metrics=metrics,
    )
    state.wake = runtime.dispatcher.wake
    state.engine_status = lambda: runtime.status
    state.trunk_registrations = lambda: [
        TrunkRegistration(r.name, r.registered, r.last_error)
        for r in runtime.telephony.trunk_registrations
    ]

    async def drain(hurry: asyncio.Event) -> None:
        await runtime.drain(settings.engine.drain_s, hurry)

    state.drain = drain
    try:
        yield
    finally:
        state.wake = wakeup.nobody
        await runtime.stop()
        engine_pool.dispose()


@asynccontextmanager
async def engine_in_child_process(settings: Settings, state: AppState) -> AsyncIterator[None]:
    """The web serves once the engine takes calls; it stops the engine before it exits.

    Requests reach the engine through the database. It is woken after each commit that queued
    work by NOTIFY on PostgreSQL, and elsewhere (SQLite) by a byte on a pipe to the child. While a
    crashed engine is started again, the web goes on taking requests: they wait, queued. The
    child serves its own metrics (`metrics.engine_port`).
    """
    from callnow.engine.child import EngineChild

    child = EngineChild(
        settings,
        stop_timeout_s=settings.engine.drain_s + ENGINE_STOP_MARGIN_S,
        wake_pipe=not settings.effective_database_url.startswith("postgresql"),
    )
    await asyncio.to_thread(child.start)
    state.wake = child.wake
    draining = False
    state.engine_status = lambda: "draining" if draining else child.status
    state.trunk_registrations = lambda: registrations_written(settings)

    async def drain(hurry: asyncio.Event) -> None:
        # Closing its stdin drains the child; a SIGTERM then hurries it (as for `callnow engine`).
        nonlocal draining
        draining = True
        stopping = asyncio.ensure_future(asyncio.to_thread(child.stop))
        hurried = asyncio.ensure_future(hurry.wait())
        done, _ = await asyncio.wait({stopping, hurried}, return_when=asyncio.FIRST_COMPLETED)
        if hurried in done:
            child.hurry()
        else:
            hurried.cancel()
        await stopping

    state.drain = drain
    try:
        yield
    finally:
        state.wake = wakeup.nobody
        await asyncio.to_thread(child.stop)


def registrations_written(settings: Settings) -> list[TrunkRegistration]:
    """The trunk registrations as the engine child last wrote them (see `LiveTelephony`);
    none when it has not (yet) or the file cannot be read."""
    from callnow.engine.child import REGISTRATIONS_FILE

    try:
        states = json.loads((settings.data_dir / REGISTRATIONS_FILE).read_text())
        return [
            TrunkRegistration(str(s["name"]), bool(s["registered"]), s.get("last_error"))
            for s in states
        ]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _lifespan(settings: Settings, metrics: Metrics, *, with_engine: bool) -> EngineLifespan:
    """What runs while the web serves: the metrics listener, and the engine beside the web
    (a child process, or this process)."""

    @asynccontextmanager
    async def run(state: AppState) -> AsyncIterator[None]:
        web_pool = state.sessions.kw["bind"]
        metrics.watch_pool("web", pool_use(web_pool))
        listener = None
        if settings.metrics.enabled:
            listener = metrics.serve(settings.metrics.host, settings.metrics.port)
        try:
            if not with_engine:
                yield
            elif settings.engine_in_own_process:
                async with engine_in_child_process(settings, state):
                    yield
            else:
                async with engine_in_this_process(settings, state.sessions, state, metrics):
                    yield
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.stop()

    return run


def create_app(
    settings: Settings, *, with_engine: bool = False, metrics: Metrics | None = None
) -> FastAPI:
    """The web app; with `with_engine`, it also runs the call engine while it serves: in this
    process, or in a child process (`settings.engine_in_own_process`, the default).
    `metrics`: this process's, when the caller wants to read it (tests); else made here."""
    metrics = metrics or Metrics("web")
    return build_app(
        settings,
        engine_lifespan=_lifespan(settings, metrics, with_engine=with_engine),
        metrics=metrics,
    )
