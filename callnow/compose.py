"""The composition root: builds the service's processes from the settings.

It alone wires the web to an engine: the web app is assembled by `web.app.build_app`, and the
engine (in this process or a child process) is started here for as long as the app serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from callnow.config import Settings
from callnow.store import wakeup
from callnow.store.db import make_engine, make_session_factory
from callnow.web.app import EngineLifespan, build_app
from callnow.web.context import AppState, TrunkRegistration

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
        settings, make_session_factory(engine_pool), woken_in_process_by=wakeup.sender()
    )
    state.wake = runtime.dispatcher.wake
    state.engine_status = lambda: "running" if runtime.dispatcher.claiming else "stopped"
    state.trunk_registrations = lambda: [
        TrunkRegistration(r.name, r.registered, r.last_error)
        for r in runtime.telephony.trunk_registrations
    ]
    try:
        yield
    finally:
        state.wake = wakeup.nobody
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
    state.trunk_registrations = lambda: registrations_written(settings)
    try:
        yield
    finally:
        await asyncio.to_thread(child.stop)


def registrations_written(settings: Settings) -> list[TrunkRegistration]:
    """The trunk registrations as the engine child last wrote them (see `LiveTelephony`);
    none when it has not (yet) or the file cannot be read."""
    from callnow.engine.live.telephony import REGISTRATIONS_FILE

    try:
        states = json.loads((settings.data_dir / REGISTRATIONS_FILE).read_text())
        return [
            TrunkRegistration(str(s["name"]), bool(s["registered"]), s.get("last_error"))
            for s in states
        ]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _engine_lifespan(settings: Settings) -> EngineLifespan:
    """Where the engine runs beside this web: a child process, or this process."""
    if settings.engine_in_own_process:
        return lambda state: engine_in_child_process(settings, state)
    return lambda state: engine_in_this_process(settings, state.sessions, state)


def create_app(settings: Settings, *, with_engine: bool = False) -> FastAPI:
    """The web app; with `with_engine`, it also runs the call engine while it serves: in this
    process (the embedded default), or in a child process (`settings.engine_in_own_process`)."""
    return build_app(settings, engine_lifespan=_engine_lifespan(settings) if with_engine else None)
