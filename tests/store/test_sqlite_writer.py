"""SQLite writers take turns on a Python lock, and across processes on a file lock, instead of
SQLite's busy handler.

SQLite's busy timeout is set to 0 here, so any writer that met SQLite's own lock would fail at
once with "database is locked": a second writer that succeeds must have waited on our lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from callnow.store.sqlite_writer import FileTurn, WriterTurns, one_writer_connection


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


def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def test_an_urgent_writer_goes_before_writers_that_waited_longer() -> None:
    """The call engine's writes must not queue behind a flood of web writes."""
    turns = WriterTurns()
    assert turns.acquire(urgent=False, timeout=1)
    order: list[str] = []

    def writer(name: str, urgent: bool) -> None:
        assert turns.acquire(urgent=urgent, timeout=5)
        order.append(name)
        turns.release()

    web = [threading.Thread(target=writer, args=(f"web-{i}", False)) for i in range(5)]
    for thread in web:
        thread.start()
    _wait_until(lambda: turns.waiting == 5)
    engine = threading.Thread(target=writer, args=("engine", True))
    engine.start()
    _wait_until(lambda: turns.waiting == 6)
    turns.release()
    for thread in [*web, engine]:
        thread.join(5)
    assert order[0] == "engine"
    assert sorted(order[1:]) == [f"web-{i}" for i in range(5)]


def test_writers_of_one_kind_take_their_turns_in_the_order_they_came() -> None:
    """A release hands the turn to the longest waiter, not to whichever thread wakes first."""
    turns = WriterTurns()
    assert turns.acquire(urgent=False, timeout=1)
    order: list[int] = []

    def writer(number: int) -> None:
        assert turns.acquire(urgent=False, timeout=5)
        order.append(number)
        turns.release()

    threads = []
    for number in range(6):  # each one queued before the next starts
        threads.append(threading.Thread(target=writer, args=(number,)))
        threads[-1].start()
        _wait_until(lambda n=number: turns.waiting == n + 1)
    turns.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))


def test_a_handed_over_turn_stays_held_until_its_new_writer_releases_it() -> None:
    """The release that hands the turn over does not free it: nobody else slips in between."""
    turns = WriterTurns()
    assert turns.acquire(urgent=False, timeout=1)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(turns.acquire(urgent=False, timeout=0.2)))
    waiter.start()
    _wait_until(lambda: turns.waiting == 1)
    turns.release()
    waiter.join(5)
    assert got == [True] and turns.waiting == 0
    assert not turns.acquire(urgent=False, timeout=0.05)  # still held by the waiter
    turns.release()
    assert turns.acquire(urgent=False, timeout=0.05)


def test_a_writer_that_cannot_get_its_turn_gives_up_after_its_wait() -> None:
    turns = WriterTurns()
    assert turns.acquire(urgent=True, timeout=1)
    assert not turns.acquire(urgent=True, timeout=0.05)
    assert turns.waiting == 0


# -- across processes: the web and its engine child on one file ------------------------------

HOLDER = """
import sqlite3, sys
from callnow.store.sqlite_writer import one_writer_connection

path, urgent = sys.argv[1], sys.argv[2] == "urgent"
connection = sqlite3.connect(
    path, timeout=0, factory=one_writer_connection(path, wait_s=30, urgent=urgent)
)
connection.cursor().execute("INSERT INTO t VALUES (1)")
print("writing", flush=True)
sys.stdin.readline()
connection.commit()
print("committed", flush=True)
"""


def test_a_writer_in_another_process_waits_for_the_turn_not_for_sqlite(database: str) -> None:
    """SQLite's busy timeout is 0 on both sides: the second writer succeeds only by waiting
    on the file turn until the other process has committed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database, "web"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "writing\n"
        mine = connect(database, one_writer_connection(database, wait_s=30, urgent=True))
        thread, errors = write_in_thread(mine, 2)
        thread.join(0.3)
        assert thread.is_alive(), "the writer here should wait for the other process's turn"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "committed\n"
        thread.join(30)
        assert errors == []
        assert rows(database) == [1, 2]
    finally:
        holder.kill()
        holder.wait()


def _someone_urgent_waits(database: str) -> bool:
    fd = os.open(f"{database}-urgent.lock", os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def test_across_processes_an_urgent_writer_goes_before_one_that_waited_longer(
    database: str,
) -> None:
    """flock treats each open file apart, so each FileTurn here stands for one process."""
    holder, web, engine = FileTurn(database), FileTurn(database), FileTurn(database)
    assert holder.acquire(urgent=False, deadline=time.monotonic() + 1)
    order: list[str] = []

    def take(turn: FileTurn, name: str, urgent: bool) -> None:
        assert turn.acquire(urgent=urgent, deadline=time.monotonic() + 10)
        order.append(name)
        turn.release()

    web_thread = threading.Thread(target=take, args=(web, "web", False))
    web_thread.start()
    engine_thread = threading.Thread(target=take, args=(engine, "engine", True))
    engine_thread.start()
    _wait_until(lambda: _someone_urgent_waits(database))
    holder.release()
    for thread in (web_thread, engine_thread):
        thread.join(10)
    assert order == ["engine", "web"]
    assert not _someone_urgent_waits(database)  # the engine no longer says it waits


def test_a_writer_that_cannot_get_the_file_turn_gives_up_at_its_deadline(database: str) -> None:
    holder, other = FileTurn(database), FileTurn(database)
    assert holder.acquire(urgent=True, deadline=time.monotonic() + 1)
    assert not other.acquire(urgent=True, deadline=time.monotonic() + 0.05)
    assert not other.held
    assert not _someone_urgent_waits(database)  # it took back its word that it waits
    holder.release()
    assert other.acquire(urgent=False, deadline=time.monotonic() + 1)
    other.release()


def test_a_lock_file_that_cannot_be_made_leaves_the_turn_to_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    turns = WriterTurns(str(tmp_path / "no-such-directory" / "callnow.sqlite3"))
    assert turns.acquire(urgent=False, timeout=1)
    turns.release()
    assert turns.acquire(urgent=True, timeout=1)  # the process's own turn still works
    turns.release()
    assert [r.getMessage()[:40] for r in caplog.records] == [
        "writers take turns in this process only:"
    ]  # said once, not at each write
