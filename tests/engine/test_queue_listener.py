"""Wake-ups through PostgreSQL: the web's NOTIFY names its process, and an engine in that same
process (already woken directly) ignores it, while one elsewhere is woken."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import make_url

from callnow.engine.runtime import QueueListener
from callnow.store import wakeup
from callnow.store.db import transaction

pytestmark = pytest.mark.postgres


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Wakes:
    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_beyond(self, count: int, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count > count, timeout)


@pytest.fixture
def listening(postgresql_url: str) -> Iterator[tuple[Wakes, psycopg.Connection]]:
    """A listener of a process named "this-process", already listening, and a connection that
    plays the web of any process."""
    wakes = Wakes()
    listener = QueueListener(postgresql_url, wakes, ignore_sender="this-process")
    listener.start()
    with psycopg.connect(dsn(postgresql_url)) as web:
        try:
            # LISTEN runs in the listener's thread: notify until it hears, so it surely listens.
            deadline = time.monotonic() + 10
            while not wakes.wait_beyond(0, timeout=0.1) and time.monotonic() < deadline:
                notify(web, "another-process")
            assert wakes.count > 0, "the listener never heard a NOTIFY"
            yield wakes, web
        finally:
            listener.stop()


def notify(web: psycopg.Connection, *senders: str) -> None:
    """NOTIFYs in one transaction: PostgreSQL delivers them in this order at commit."""
    for sender in senders:
        web.execute("SELECT pg_notify(%s, %s)", (wakeup.NOTIFY_CHANNEL, sender))
    web.commit()


def test_a_request_queued_by_another_process_wakes_the_engine(listening) -> None:
    wakes, web = listening
    before = wakes.count

    notify(web, "another-process")

    assert wakes.wait_beyond(before)
    assert wakes.count == before + 1


def test_the_engines_own_process_does_not_wake_it_a_second_time(listening) -> None:
    wakes, web = listening
    before = wakes.count

    notify(web, "this-process", "this-process", "another-process")

    assert wakes.wait_beyond(before)  # the last one, heard after the first two
    assert wakes.count == before + 1


def test_the_webs_notify_names_its_process(postgresql_sessions) -> None:
    with psycopg.connect(dsn(str(postgresql_sessions.kw["bind"].url)), autocommit=True) as engine:
        engine.execute(f"LISTEN {wakeup.NOTIFY_CHANNEL}")

        with transaction(postgresql_sessions) as session:
            wakeup.queued(session)

        (note,) = list(engine.notifies(timeout=10, stop_after=1))
    assert note.payload == wakeup.sender()
