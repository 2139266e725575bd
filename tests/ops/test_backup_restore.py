"""Backup and restore as docs/operations.md says: pg_dump a database with data, restore it into
a fresh one, and `callnow db status` says current, the service starts and nothing is lost."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from callnow.cli import app as cli
from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from callnow.services import provisioning as service
from callnow.store.db import make_engine, make_session_factory, migrate, transaction
from callnow.store.schema import metadata
from tests.support.world import PG_SERVER, queued_request, seed_two_owners

pytestmark = pytest.mark.postgres


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    names = [f"callnow_backup_{secrets.token_hex(4)}" for _ in range(2)]
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{names[0]}", f"{PG_SERVER}/{names[1]}"
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _every_row(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = {
            table.name: sorted(map(tuple, connection.execute(table.select())), key=repr)
            for table in metadata.sorted_tables
        }
    engine.dispose()
    return rows


def test_a_dump_restored_into_a_fresh_database_is_current_and_complete(
    databases: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, fresh = databases
    migrate(source)
    engine = make_engine(source)
    with transaction(make_session_factory(engine)) as session:
        seed_two_owners(session)
        queued_request(session, "alice", "+61412345678", now=datetime.now(UTC))
        service.issue_token(session, label="sync", scopes=["tenants:read"], tenant_name=None)
    engine.dispose()
    before = _every_row(source)
    assert before["call_requests"] and before["provider_tokens"]

    dump = tmp_path / "callnow.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", _libpq(source)], check=True, timeout=120
    )
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(fresh)}", str(dump)],
        check=True,
        timeout=120,
    )

    monkeypatch.setenv("CALLNOW_DATABASE_URL", fresh)
    monkeypatch.setenv("CALLNOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    status = CliRunner().invoke(cli, ["db", "status"])
    assert status.exit_code == 0, status.output
    assert _every_row(fresh) == before

    settings = Settings(
        data_dir=tmp_path,
        database_url=fresh,
        demo_data=False,
        web=WebSettings(secret_key="restore-" + "x" * 32, public_base_url="http://testserver"),
        engine={"enabled": False},
    )
    web = create_app(settings)
    with TestClient(web, base_url="http://testserver") as client:
        assert client.get("/api/v1/health").json()["database"] == "ok"
        assert client.get("/callnow/alice").status_code == 200
    web.state.engine.dispose()
