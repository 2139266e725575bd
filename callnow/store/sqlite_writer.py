"""One SQLite writer at a time in this process, queued on a Python lock.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits
in SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between tries: with the web
and the engine writing from several threads, a transaction of one millisecond could wait tens
of milliseconds for a lock that had long been free. Here each connection takes a process-wide
lock just before the first write of its transaction (where Python's sqlite3 opens it, with an
implicit BEGIN) and gives it back at commit or rollback, so the next writer starts at once.
Readers are not held up (WAL). Another process on the same file still meets the busy handler.

Writers take turns by urgency: the call engine's connections are urgent (a leg's answer time or
state must land while the call is live), the web's are not. When both wait, the engine goes first,
so a flood of form posts can delay, but never starve, the engine's records.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriterTurns:
    """A lock for one database file that hands itself to urgent waiters before the others."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._held = False
        self._urgent_waiting = 0
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        with self._changed:
            self._waiting += 1
            self._urgent_waiting += urgent
            try:
                if not self._changed.wait_for(
                    lambda: not self._held and (urgent or not self._urgent_waiting), timeout
                ):
                    return False
                self._held = True
                return True
            finally:
                self._waiting -= 1
                self._urgent_waiting -= urgent

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()


_turns: dict[str, WriterTurns] = {}
_turns_guard = threading.Lock()


def turns_for(database: str) -> WriterTurns:
    """The one `WriterTurns` of this database file in this process."""
    with _turns_guard:
        return _turns.setdefault(database, WriterTurns())


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
