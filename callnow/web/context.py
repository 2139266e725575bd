"""What every route needs: the database, the settings, templates, the client's address."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from callnow.config import Settings
from callnow.i18n import install_in_jinja
from callnow.services.intake import Safeguards
from callnow.store.held_pages import HeldPages
from callnow.web.shared_commits import SharedCommits
from callnow.web.status_board import StatusBoard

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
install_in_jinja(templates.env)


EngineStatus = Literal["running", "restarting", "draining", "stopped", "elsewhere"]
# Drains the engine beside this web (stop claiming, let calls end); the event hurries it.
Drain = Callable[[asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class TrunkRegistration:
    """A trunk registration as health shows it (no secrets, no addresses)."""

    name: str
    registered: bool
    last_error: str | None = None


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    safeguards: Safeguards
    # Tells an in-process engine that work was queued (set when the engine runs here).
    wake: Callable[[], None] = field(default=lambda: None)
    # What the health check says of the engine; set while this service runs one.
    engine_status: Callable[[], EngineStatus] = field(default=lambda: "elsewhere")
    # The trunk registrations of the engine beside this web (none known otherwise).
    trunk_registrations: Callable[[], list[TrunkRegistration]] = field(default=list)
    # Set by the composition root while an engine runs beside this web.
    drain: Drain | None = None
    # The public pages this process served, kept between visits (checked by revision).
    pages: HeldPages = field(default_factory=HeldPages)
    # What the visitors' status streams follow: one query per poll for all of them.
    status_board: StatusBoard = field(init=False)
    # Threads that only end sessions (commit or roll back); see `_unit_of_work`.
    _enders: CapacityLimiter | None = field(default=None, init=False)
    # Runs the public pages' work, in transactions shared by requests that arrive together.
    public_work: SharedCommits = field(init=False)

    def __post_init__(self) -> None:
        self.status_board = StatusBoard(self.sessions)
        self.public_work = SharedCommits(
            self.sessions, self.settings.public_threads, self.settings.public_batch
        )

    def read_only(self) -> Session:
        """A session for long-lived readers (status streams): never committed, so use it only
        to read, and close it (`with state.read_only() as session:`)."""
        return self.sessions()

    @property
    def enders(self) -> CapacityLimiter:
        if self._enders is None:  # made on first use: a limiter belongs to the running loop
            self._enders = CapacityLimiter(SESSION_ENDERS)
        return self._enders


def app_state(request: Request) -> AppState:
    return request.app.state.callnow


# Threads reserved for commits and rollbacks, apart from the threads routes run on.
SESSION_ENDERS = 8


async def _unit_of_work(request: Request) -> AsyncIterator[Session]:
    """A session whose work is committed when the route returns, before the response leaves.

    Used with dependency scope "function" (see `UnitOfWork`): with FastAPI's default scope the
    commit would run after the response was sent, and a client following a 303 or reading a
    201's row could see it missing. Opening the session does no I/O (the connection is taken at
    the first statement), so it opens on the event loop. The commit runs on threads of its own:
    a finished route still holds its pooled connection, and if its commit queued for the same
    threads as routes waiting for connections, a burst of requests would deadlock the two.
    """
    state = app_state(request)
    session = state.sessions()
    transaction = session.begin()
    ender = partial(anyio.to_thread.run_sync, limiter=state.enders, abandon_on_cancel=False)
    try:
        yield session
    except BaseException:
        await ender(_end, session, transaction.rollback)
        raise
    await ender(_end, session, transaction.commit)


T = TypeVar("T")

UnitOfWork = Annotated[Session, Depends(_unit_of_work, scope="function")]
"""The database session of a route: committed before its answer leaves, rolled back on error."""


async def in_one_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work` and its commit on a worker thread, and return what it built.

    The same guarantee as `UnitOfWork` (committed before the answer leaves, rolled back on
    error) with one thread hand-off instead of two (route, then commit). The public page's
    routes, which a flood hits hardest, use it; `work` builds the whole response, because the
    session is closed when it returns, and may share its transaction with other requests' work
    (`shared_commits`): it must not commit, and what it raises rolls back only its own writes.

    It runs on threads of its own, few of them (`web.public_threads`): a post spends most of
    its time holding the database's write turn, so more threads only queue for that turn
    while they take the interpreter from the one that holds it, which then holds it longer.
    A flood also keeps to those threads, away from the portal's and health's."""
    return await app_state(request).public_work.run(work)


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
