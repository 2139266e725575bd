"""SQLite writers take turns, in this process on a Python lock and across processes on a file lock.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits
in SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between tries: with the web
and the engine writing from several threads, a transaction of one millisecond could wait tens
of milliseconds for a lock that had long been free. Here each connection takes a process-wide
lock just before the first write of its transaction (where Python's sqlite3 opens it, with an
implicit BEGIN) and gives it back at commit or rollback, so the next writer starts at once.
Readers are not held up (WAL).

The process's turn is then also taken across processes (the web and its engine child on one
file): an exclusive `flock` on `<database>-writer.lock`, tried without blocking and tried again
after pauses of half a millisecond up to two, so the one writer of each process that holds its
turn there takes it within a pause of its release, not SQLite's 100 ms. Only the holder of the
process's turn touches the files, so each process keeps one descriptor per file.

Writers take turns by urgency: the call engine's connections are urgent (a leg's answer time or
state must land while the call is live), the web's are not. When both wait, the engine goes first,
so a flood of form posts can delay, but never starve, the engine's records. Across processes an
urgent writer says it waits by holding a shared `flock` on `<database>-urgent.lock`; a writer
that is not urgent takes the file turn only when it can lock that file exclusively (nobody urgent
waits), so it can slip in before an urgent writer at most once. Every wait is bounded by the
connection's `wait_s`: past it the write goes ahead and SQLite's own busy handler decides. A
lock file that cannot be opened (a read-only directory) leaves the turn to this process alone.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import sqlite3
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# Pauses between tries of the file lock held by another process: doubling within these bounds.
FIRST_PAUSE_S = 0.0005
LONGEST_PAUSE_S = 0.002


class FileTurn:
    """The write turn of one database file across processes (see the module's docstring).

    Used only by the holder of its process's `WriterTurns`, one thread at a time.
    """

    def __init__(self, database: str) -> None:
        self._paths = (f"{database}-writer.lock", f"{database}-urgent.lock")
        self._fds: tuple[int, int] | None = None
        self._unusable = False
        self.held = False

    def _open(self) -> tuple[int, int] | None:
        if self._fds is None and not self._unusable:
            try:
                # flock needs no write access: a file another user created serves as well.
                self._fds = tuple(  # type: ignore[assignment]  # two paths, two descriptors
                    os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
                    for path in self._paths
                )
            except OSError as error:
                self._unusable = True
                log.warning("writers take turns in this process only: %s", error)
        return self._fds

    def acquire(self, *, urgent: bool, deadline: float) -> bool:
        """Take the file turn by `deadline` (time.monotonic); False if the time ran out."""
        fds = self._open()
        if fds is None:
            return False
        writer, urgent_waiting = fds
        announced = False
        pause = FIRST_PAUSE_S
        try:
            while True:
                if urgent and not announced:
                    announced = _try_lock(urgent_waiting, fcntl.LOCK_SH)
                if (urgent or _nobody_urgent_waits(urgent_waiting)) and _try_lock(
                    writer, fcntl.LOCK_EX
                ):
                    self.held = True
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(pause, left))
                pause = min(pause * 2, LONGEST_PAUSE_S)
        finally:
            if announced:
                fcntl.flock(urgent_waiting, fcntl.LOCK_UN)

    def release(self) -> None:
        if self.held and self._fds is not None:
            self.held = False
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)


def _try_lock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _nobody_urgent_waits(fd: int) -> bool:
    if not _try_lock(fd, fcntl.LOCK_EX):
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


class WriterTurns:
    """A lock for one database file that hands itself to urgent waiters before the others;
    with the file's path, its holder also takes the turn across processes (`FileTurn`).

    A release hands the turn straight to the next waiter (urgent ones first, each kind in order
    of arrival) and wakes only that one: waking every waiter to race for it cost each post a
    wake-up, and the interpreter lock, per writer waiting behind it."""

    def __init__(self, database: str | None = None) -> None:
        self._file = FileTurn(database) if database and database != ":memory:" else None
        self._guard = threading.Lock()
        self._held = False
        # Each waiter sleeps on a lock of its own, acquired until the turn is handed to it.
        self._urgent: collections.deque[threading.Lock] = collections.deque()
        self._others: collections.deque[threading.Lock] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._others)

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        """Take this process's turn, then the file's, within `timeout` in all. False if this
        process's turn did not come; past the timeout on the file, the turn is held here only."""
        deadline = time.monotonic() + timeout
        if not self._process_turn(urgent, timeout):
            return False
        if self._file is not None:
            try:
                self._file.acquire(urgent=urgent, deadline=deadline)
            except BaseException:
                self.release()
                raise
        return True

    def _process_turn(self, urgent: bool, timeout: float) -> bool:
        queue = self._urgent if urgent else self._others
        with self._guard:
            if not self._held:  # nobody holds it, so nobody waits either
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            queue.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True
        with self._guard:
            if waiter in queue:
                queue.remove(waiter)
                return False
        return True  # handed over just as the wait ran out: the turn is ours

    def release(self) -> None:
        if self._file is not None:
            self._file.release()
        with self._guard:
            queue = self._urgent or self._others
            if queue:
                queue.popleft().release()  # handed over: the turn stays held
            else:
                self._held = False


_turns: dict[str, WriterTurns] = {}
_turns_guard = threading.Lock()


def turns_for(database: str) -> WriterTurns:
    """The one `WriterTurns` of this database file in this process."""
    with _turns_guard:
        if database not in _turns:
            _turns[database] = WriterTurns(database)
        return _turns[database]


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]  # a OneWriterConnection's cursor
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]  # a OneWriterConnection's cursor
        return super().executemany(sql, seq_of_parameters)


def one_writer_connection(
    database: str, wait_s: float, *, urgent: bool = False
) -> type[sqlite3.Connection]:
    """A `sqlite3.Connection` class (for `connect(factory=...)`) whose writers take turns.

    `wait_s` bounds the wait for the lock, as SQLite's own busy timeout would; past it the
    write goes ahead and SQLite decides (normally "database is locked"). `urgent` connections
    are served before the others.
    """
    turns = turns_for(database)

    class OneWriterConnection(sqlite3.Connection):
        _holds_lock = False

        # typeshed overloads cursor() on the factory; one signature serves both here.
        def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
            return super().cursor(factory or _Cursor)

        def _before(self, sql: str) -> None:
            if not self._holds_lock and _writes(sql):
                self._holds_lock = turns.acquire(urgent=urgent, timeout=wait_s)

        def _release(self) -> None:
            if self._holds_lock:
                self._holds_lock = False
                turns.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

    return OneWriterConnection
