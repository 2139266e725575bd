"""The public pages' work, run in transactions shared by the requests that arrive together.

A form post's own work is short; what it costs besides is per transaction: a session, a pooled
connection, the commit (and on SQLite the writer's turn, which posts take one at a time anyway).
Under a flood, posts queue for the few public threads, so whoever runs next finds several
waiting: it runs up to `largest` of them one after the other in one session and commits them
once, and only then answers each. Nothing is answered before the commit that holds its writes.

If any of them fails, or the commit does, the shared transaction is rolled back and each of its
requests runs again alone, in a transaction of its own, so one request's error is never another's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio.to_thread
import structlog
from anyio import CapacityLimiter
from sqlalchemy.orm import Session, sessionmaker

log = structlog.get_logger(__name__)

T = TypeVar("T")

_NOT_RUN: Any = object()


@dataclass(eq=False)
class _Request(Generic[T]):
    """One request's work, waiting for (or given) its turn in a shared transaction."""

    work: Callable[[Session], T]
    # The request's own context (its log fields), as a thread of anyio's would be given.
    context: contextvars.Context
    answer: asyncio.Future[T]
    result: Any = _NOT_RUN
    error: BaseException | None = None

    def run(self, session: Session) -> Any:
        return self.context.run(self.work, session)

    def settle(self) -> None:
        if self.answer.done():  # its client went away: what it did stays committed
            return
        if self.error is not None:
            self.answer.set_exception(self.error)
        elif self.result is _NOT_RUN:  # its runner was stopped (the loop is closing)
            self.answer.set_exception(RuntimeError("the request's work did not run"))
        else:
            self.answer.set_result(self.result)


@dataclass
class SharedCommits:
    """Runs work on at most `runners` threads at once, up to `largest` requests a transaction."""

    sessions: sessionmaker[Session]
    runners: int
    largest: int
    _waiting: deque[_Request[Any]] = field(default_factory=deque, init=False)
    # Counted apart from the tasks: a runner that found nothing left to do stops counting at
    # once, before its task is done, so work queued in between starts a runner of its own.
    _runners_busy: int = field(default=0, init=False)
    _running: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _threads: CapacityLimiter | None = field(default=None, init=False)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` and the commit of its writes; return what it built once committed."""
        loop = asyncio.get_running_loop()
        request: _Request[T] = _Request(work, contextvars.copy_context(), loop.create_future())
        self._waiting.append(request)
        if self._runners_busy < self.runners:
            self._runners_busy += 1
            runner = loop.create_task(self._serve())
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)
        return await request.answer

    async def drain(self) -> None:
        """Wait until the work already started is committed (at shutdown, before the pool goes)."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def _serve(self) -> None:
        if self._threads is None:  # made on first use: a limiter belongs to the running loop
            self._threads = CapacityLimiter(self.runners)
        try:
            while batch := self._next_batch():
                try:
                    await anyio.to_thread.run_sync(
                        self._commit, batch, abandon_on_cancel=False, limiter=self._threads
                    )
                finally:
                    for request in batch:
                        request.settle()
        finally:
            self._runners_busy -= 1

    def _next_batch(self) -> list[_Request[Any]]:
        batch: list[_Request[Any]] = []
        while self._waiting and len(batch) < self.largest:
            request = self._waiting.popleft()
            if not request.answer.done():  # gone before its turn: nothing done, nothing to do
                batch.append(request)
        return batch

    def _commit(self, batch: list[_Request[Any]]) -> None:
        # A result is kept only once its transaction committed: a request is never answered
        # with what a rolled-back transaction built.
        if len(batch) > 1:
            try:
                with self.sessions() as session, session.begin():
                    results = [request.run(session) for request in batch]
                for request, result in zip(batch, results, strict=True):
                    request.result = result
                return
            except Exception as error:
                log.info(
                    "shared_transaction_failed",
                    requests=len(batch),
                    error=type(error).__name__,
                    then="each alone",
                )
        for request in batch:
            try:
                with self.sessions() as session, session.begin():
                    result = request.run(session)
                request.result = result
            except Exception as error:
                request.error = error
