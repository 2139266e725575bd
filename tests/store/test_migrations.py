"""Migrations build the schema the models describe, on an empty SQLite file and on PostgreSQL."""

import secrets

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from callnow.store.db import alembic_config, migrate
from callnow.store.schema import metadata
from tests.support.world import PG_SERVER


def schema_drift(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    return drift


def test_an_empty_sqlite_file_is_migrated_to_exactly_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'callnow.sqlite3'}"
    migrate(url)
    assert schema_drift(url) == []
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"tenants", "users", "extensions", "profiles", "call_requests", "call_legs"} <= tables


def test_migrating_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'callnow.sqlite3'}"
    migrate(url)
    migrate(url)
    assert schema_drift(url) == []


def test_every_migration_downgrades_and_upgrades_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'callnow.sqlite3'}"
    migrate(url)
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(create_engine(url)).get_table_names()) == {"alembic_version"}
    migrate(url)
    assert schema_drift(url) == []


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_migrated_to_exactly_the_models():
    name = f"callnow_migrate_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{PG_SERVER}/{name}"
        migrate(url)
        assert schema_drift(url) == []
        command.downgrade(alembic_config(url), "base")
        migrate(url)
        assert schema_drift(url) == []
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
