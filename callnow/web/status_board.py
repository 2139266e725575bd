"""The state of every request a visitor is watching, read for all of them in one query.

Each open status stream used to read its own request from the database twice a second. With a
few hundred visitors waiting for their calls, that was most of the web's work for pages that
change a few times a minute (docs/decisions/0007-status-board.md). A board per web process now reads
the state of every watched request in one query per poll, and wakes only the streams whose
request changed. Streams read the board, never the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from callnow.store import requests as request_store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Seen:
    """What a visitor's page shows is drawn from these columns."""

    state: str
    reason: str
    # Until when the owner is held after their phone answered busy: the page then says they are
    # on another call (read with the state, so a hold that starts after the page opened shows).
    owner_busy_until: datetime | None = None


class _Watched:
    """One request, as last read, and how often its streams want it read."""

    def __init__(self, seen: Seen, poll_s: float) -> None:
        self.seen: Seen | None = seen  # None: the request is gone
        self.version = 0
        self.changed = asyncio.Event()
        self.streams = 0
        self.poll_s = poll_s

    def update(self, seen: Seen | None) -> None:
        if seen == self.seen:
            return
        self.seen = seen
        self.version += 1
        # A fresh event for the next change; every stream waiting on this one wakes.
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()


class Watch:
    """One stream's view of its request."""

    def __init__(self, watched: _Watched) -> None:
        self._watched = watched
        self._version: int | None = None

    async def next(self, wait_s: float) -> Seen | None:
        """The request as last read: at once if it changed since the last call, otherwise after
        it changes or `wait_s` passes, whichever comes first."""
        watched = self._watched
        if self._version == watched.version:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await watched.changed.wait()
        self._version = watched.version
        return watched.seen


class StatusBoard:
    """Used from the web's event loop only."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._watched: dict[int, _Watched] = {}
        self._poller: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def watching(self, request_id: int, seen: Seen, *, poll_s: float) -> AsyncIterator[Watch]:
        """Follow a request from `seen` (what the caller just read), read again every `poll_s`
        (the shortest any of its streams asks for) while someone watches it."""
        watched = self._watched.get(request_id)
        if watched is None:
            watched = self._watched[request_id] = _Watched(seen, poll_s)
        watched.poll_s = min(watched.poll_s, poll_s)
        watched.streams += 1
        if (
            self._poller is None
            or self._poller.done()
            or self._poller.get_loop() is not asyncio.get_running_loop()
        ):
            self._poller = asyncio.create_task(self._poll(), name="status-board")
        try:
            yield Watch(watched)
        finally:
            watched.streams -= 1
            if watched.streams == 0:
                del self._watched[request_id]

    @property
    def watched(self) -> int:
        return len(self._watched)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll(self) -> None:
        # Ends when nobody watches; the next stream to start starts it again.
        while self._watched:
            await asyncio.sleep(min(watched.poll_s for watched in self._watched.values()))
            request_ids = list(self._watched)
            if not request_ids:
                return
            try:
                found = await asyncio.to_thread(self._read, request_ids)
            except Exception:
                # The streams keep what they last showed; the next poll tries again.
                log.exception("reading the watched requests failed")
                continue
            for request_id in request_ids:
                watched = self._watched.get(request_id)
                if watched is not None:
                    watched.update(found.get(request_id))

    def _read(self, request_ids: list[int]) -> dict[int, Seen]:
        with self._sessions() as session:  # read only; closed (its transaction ended) at once
            found = request_store.states_of(session, request_ids)
        return {request_id: Seen(*columns) for request_id, columns in found.items()}
