"""What every route needs: the database, the settings, templates, the client's address."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from callnow.config import Settings
from callnow.web.intake import Safeguards
from callnow.web.status_board import StatusBoard

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


EngineStatus = Literal["running", "restarting", "stopped", "elsewhere"]


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    safeguards: Safeguards
    # Tells an in-process engine that work was queued (set when the engine runs here).
    wake: Callable[[], None] = field(default=lambda: None)
    # What the health check says of the engine; set while this service runs one.
    engine_status: Callable[[], EngineStatus] = field(default=lambda: "elsewhere")
    # What the visitors' status streams follow: one query per poll for all of them.
    status_board: StatusBoard = field(init=False)

    def __post_init__(self) -> None:
        self.status_board = StatusBoard(self.sessions)


def app_state(request: Request) -> AppState:
    return request.app.state.callnow


async def db(request: Request) -> AsyncIterator[Session]:
    """A session whose work is committed when the route returns without error.

    Opening it does no I/O (the connection is taken at the first statement), so it opens on the
    event loop; the commit or rollback runs in a worker thread. A sync generator would cost a
    hand-over to a worker thread for its start as well, on every request.
    """
    session = app_state(request).sessions()
    transaction = session.begin()
    try:
        yield session
    except Exception:  # as FastAPI ends a sync generator: a cancelled request is left to GC
        await run_in_threadpool(_end, session, transaction.rollback)
        raise
    await run_in_threadpool(_end, session, transaction.commit)


def _end(session: Session, how: Callable[[], None]) -> None:
    try:
        how()
    finally:
        session.close()


def client_address(request: Request) -> str:
    """The socket's peer, unless it is a configured trusted proxy (never trusted by default)."""
    peer = request.client.host if request.client else ""
    trusted = app_state(request).settings.web.trusted_proxies
    if not trusted or not _in_networks(peer, trusted):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    # Walk from the nearest hop back; the first address that is not a trusted proxy is the client.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _in_networks(hop, trusted):
            return hop[:45]
    return peer


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)
