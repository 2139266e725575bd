"""SQLite writers in one process take turns on a Python lock instead of SQLite's busy handler.

SQLite's busy timeout is set to 0 here, so any writer that met SQLite's own lock would fail at
once with "database is locked": a second writer that succeeds must have waited on our lock.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from callnow.store.sqlite_writer import one_writer_connection


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = str(tmp_path / "writers.sqlite3")
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.commit()
    setup.close()
    return path


def connect(path: str, factory: type[sqlite3.Connection] | None = None) -> sqlite3.Connection:
    if factory is None:
        return sqlite3.connect(path, timeout=0, check_same_thread=False)
    return sqlite3.connect(path, timeout=0, check_same_thread=False, factory=factory)


def rows(path: str) -> list[int]:
    with sqlite3.connect(path) as reader:
        return [x for (x,) in reader.execute("SELECT x FROM t ORDER BY x")]


def write_in_thread(connection: sqlite3.Connection, value: int) -> tuple[threading.Thread, list]:
    errors: list[Exception] = []

    def write() -> None:
        try:
            connection.cursor().execute("INSERT INTO t VALUES (?)", (value,))
            connection.commit()
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    return thread, errors


def test_without_it_a_second_writer_fails_at_once(database: str) -> None:
    first, second = connect(database), connect(database)
    first.execute("INSERT INTO t VALUES (1)")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO t VALUES (2)")
    first.commit()


def test_a_second_writer_waits_for_the_first_to_commit(database: str) -> None:
    factory = one_writer_connection(database, wait_s=30)
    first, second = connect(database, factory), connect(database, factory)
    first.cursor().execute("INSERT INTO t VALUES (1)")  # a transaction is open and writing

    thread, errors = write_in_thread(second, 2)
    thread.join(0.3)
    assert thread.is_alive(), "the second writer should be waiting for the first"
    first.commit()
    thread.join(30)

    assert errors == []
    assert rows(database) == [1, 2]


def test_a_rollback_hands_the_turn_on_too(database: str) -> None:
    factory = one_writer_connection(database, wait_s=30)
    first, second = connect(database, factory), connect(database, factory)
    first.cursor().execute("INSERT INTO t VALUES (1)")

    thread, errors = write_in_thread(second, 2)
    first.rollback()
    thread.join(30)

    assert errors == []
    assert rows(database) == [2]


def test_readers_do_not_wait_for_a_writer(database: str) -> None:
    factory = one_writer_connection(database, wait_s=30)
    writer, reader = connect(database, factory), connect(database, factory)
    writer.cursor().execute("INSERT INTO t VALUES (1)")

    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.commit()
    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_a_writer_that_waited_too_long_goes_ahead_and_sqlite_refuses_it(database: str) -> None:
    factory = one_writer_connection(database, wait_s=0.05)
    first, second = connect(database, factory), connect(database, factory)
    first.cursor().execute("INSERT INTO t VALUES (1)")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.cursor().execute("INSERT INTO t VALUES (2)")
    first.commit()
    second.rollback()
    second.cursor().execute("INSERT INTO t VALUES (3)")  # the turn was not kept by the failure
    second.commit()
    assert rows(database) == [1, 3]
