"""Fixtures for a migrated database (SQLite and PostgreSQL) and a running app with two owners.

Every test that uses `db_url` runs once per backend; PostgreSQL is the machine's server on
127.0.0.1:5432 (trust auth), in a database made for this test run and dropped after it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from callnow.config import Settings, WebSettings
from callnow.domain.request_state import RequestState
from callnow.store import profiles, provisioning
from callnow.store.db import make_engine, make_session_factory, migrate, transaction
from callnow.store.models import CallRequest
from callnow.store.requests import record_new
from callnow.store.schema import metadata

PG_SERVER = os.environ.get("CALLNOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    name = f"callnow_test_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no skip: a missing database server is a failure
        pytest.fail(f"PostgreSQL at {PG_SERVER} is needed for these tests: {exc}")
    url = f"{PG_SERVER}/{name}"
    migrate(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'callnow.sqlite3'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = request.getfixturevalue(f"{request.param}_url")
    yield url
    empty_database(url)


def empty_database(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()


@dataclass
class World:
    """Two tenants, each with one owner and one CallNow page."""

    settings: Settings
    client: TestClient
    sessions: object

    def session(self) -> Session:
        return self.sessions()  # type: ignore[operator]  # a sessionmaker, typed loosely here


def seed_owner(
    session: Session, *, tenant: str, email: str, internal: str, external: str, callnow_id: str
) -> None:
    t = provisioning.create_tenant(session, tenant)
    user = provisioning.create_user(session, email, PASSWORD, tenant=t, display_name=tenant)
    ext = provisioning.create_extension(
        session,
        t,
        internal_number=internal,
        external_number=external,
        display_name=f"{tenant} Owner",
        owner=user,
    )
    profile = provisioning.enable_callnow(session, ext, callnow_id)
    profile.image_validation = False


def seed_alice(session: Session) -> None:
    """Alice (alice, extension 001002, external 02 9037 1234), a tenant of one."""
    seed_owner(
        session,
        tenant="Alice Pty",
        email="alice@example.com",
        internal="001002",
        external="02 9037 1234",
        callnow_id="alice",
    )


def seed_two_owners(session: Session) -> None:
    """Alice (alice, extension 001002) and Bob (bob, extension 002001), each a tenant of one."""
    seed_alice(session)
    seed_bob(session)


def seed_bob(session: Session) -> None:
    """Bob (bob, extension 002001, external 03 9000 1111), a tenant of one."""
    seed_owner(
        session,
        tenant="Bob Pty",
        email="bob@example.com",
        internal="002001",
        external="03 9000 1111",
        callnow_id="bob",
    )


@pytest.fixture
def postgresql_sessions(postgresql_url: str) -> Iterator[sessionmaker[Session]]:
    """PostgreSQL alone, with Alice and Bob: for tests of several engines at once, which need
    row locks SQLite does not have. Emptied again afterwards."""
    engine = make_engine(postgresql_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        seed_two_owners(session)
    yield sessions
    engine.dispose()
    empty_database(postgresql_url)


def queued_request(
    session: Session,
    callnow_id: str,
    number: str,
    *,
    decision: str = "accept",
    now: datetime | None = None,
    scheduled_for: datetime | None = None,
) -> CallRequest:
    """A request as the public form stores it once accepted: queued for an engine (booked for
    `scheduled_for` when given)."""
    return record_new(
        session,
        profile=profiles.by_callnow_id(session, callnow_id),
        caller_name="Mary",
        number_typed=number,
        number_e164=number,
        source_address="192.0.2.1",
        user_agent="test",
        channel="web",
        decision=decision,
        reason="default",
        final_state=RequestState.QUEUED,
        now=now or datetime.now(UTC),
        scheduled_for=scheduled_for,
    )


@pytest.fixture
def world(db_url: str, tmp_path) -> Iterator[World]:
    from callnow.compose import create_app

    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        demo_data=False,
        web=WebSettings(secret_key="test-secret-" + "x" * 32, public_base_url="http://testserver"),
    )
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        seed_two_owners(session)
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield World(settings=settings, client=client, sessions=sessions)
    app.state.engine.dispose()
    engine.dispose()
