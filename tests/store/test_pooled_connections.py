"""Pooled PostgreSQL connections: pinged before use only after sitting idle.

A connection that waited in the pool long enough for the server to have gone away is checked
with a ping and replaced if dead, so the transaction that wanted it still succeeds. One returned
moments ago is used as it is: a busy service spends no round trip per transaction on pings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from callnow.store import db
from callnow.store.db import ping_when_idle
from tests.support.world import PG_SERVER

pytestmark = pytest.mark.postgres
IDLE_S = 0.2


@pytest.fixture
def engine(postgresql_url: str) -> Iterator[Engine]:
    engine = create_engine(postgresql_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, IDLE_S)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill_backend(pid: int) -> None:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_connection_just_returned_is_used_without_a_ping(engine, pings) -> None:
    first = backend_pid(engine)
    second = backend_pid(engine)

    assert second == first
    assert pings == []


def test_a_connection_idle_past_the_limit_is_pinged_first(engine, pings) -> None:
    first = backend_pid(engine)
    time.sleep(IDLE_S * 1.5)

    assert backend_pid(engine) == first
    assert len(pings) == 1


def test_a_dead_idle_connection_is_replaced_and_the_transaction_succeeds(engine, pings) -> None:
    dead = backend_pid(engine)
    kill_backend(dead)
    time.sleep(IDLE_S * 1.5)

    replacement = backend_pid(engine)

    assert replacement != dead
    assert len(pings) == 1


def test_a_server_lost_moments_ago_fails_one_transaction_then_the_pool_recovers(engine) -> None:
    dead = backend_pid(engine)
    kill_backend(dead)

    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != dead


def test_the_service_engine_replaces_a_dead_idle_connection(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", IDLE_S)
    engine = db.make_engine(postgresql_url)
    try:
        dead = backend_pid(engine)
        kill_backend(dead)
        time.sleep(IDLE_S * 1.5)

        assert backend_pid(engine) != dead
    finally:
        engine.dispose()
