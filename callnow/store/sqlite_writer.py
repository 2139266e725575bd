"""One SQLite writer at a time in this process, queued on a Python lock.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits
in SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between tries: with the web
and the engine writing from several threads, a transaction of one millisecond could wait tens
of milliseconds for a lock that had long been free. Here each connection takes a process-wide
lock just before the first write of its transaction (where Python's sqlite3 opens it, with an
implicit BEGIN) and gives it back at commit or rollback, so the next writer starts at once.
Readers are not held up (WAL). Another process on the same file still meets the busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(database: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(database, threading.Lock())


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]  # a OneWriterConnection's cursor
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]  # a OneWriterConnection's cursor
        return super().executemany(sql, seq_of_parameters)


def one_writer_connection(database: str, wait_s: float) -> type[sqlite3.Connection]:
    """A `sqlite3.Connection` class (for `connect(factory=...)`) whose writers take turns.

    `wait_s` bounds the wait for the lock, as SQLite's own busy timeout would; past it the
    write goes ahead and SQLite decides (normally "database is locked").
    """
    lock = _lock_for(database)

    class OneWriterConnection(sqlite3.Connection):
        _holds_lock = False

        # typeshed overloads cursor() on the factory; one signature serves both here.
        def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
            return super().cursor(factory or _Cursor)

        def _before(self, sql: str) -> None:
            if not self._holds_lock and _writes(sql):
                self._holds_lock = lock.acquire(timeout=wait_s)

        def _release(self) -> None:
            if self._holds_lock:
                self._holds_lock = False
                lock.release()

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
