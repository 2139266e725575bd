"""What every `callnow` command shares: the --config option, settings, and an admin session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from callnow.config import Settings
from callnow.store import provisioning
from callnow.store.db import make_engine, make_session_factory, schema_revisions, transaction

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file; CALLNOW_* environment variables win over it.",
        envvar="CALLNOW_CONFIG",
    ),
]


class CommandError(Exception):
    """Something the operator must fix; printed in red, exit status 1."""


def fail(message: str, status: int = 1) -> typer.Exit:
    """Print `message` in red on standard error; return the Exit to raise."""
    typer.secho(message, fg="red", err=True)
    return typer.Exit(status)


def load_settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except Exception as exc:  # settings errors are the user's to fix: say what is wrong
        raise fail(f"Invalid configuration: {exc}", 2) from exc


def refuse_other_schema(url: str) -> None:
    """Stop (exit 1) unless the database is at the schema this version of CallNow needs."""
    schema = schema_revisions(url)
    if schema.current == schema.head:
        return
    if not schema.known:
        raise fail(
            f"The database schema is at {schema.current}, which this version does not know "
            f"(it needs {schema.head}): use the CallNow version that migrated it."
        )
    raise fail(
        f"The database schema is at {schema.current or 'nothing (an empty database)'}, "
        f"this version needs {schema.head}: run `callnow db upgrade`."
    )


@contextmanager
def admin_session(settings: Settings) -> Iterator[Session]:
    """One transaction for an admin command, on a database already at this version's schema.

    Admin commands never migrate: that is `callnow db upgrade` (or a server's start), so a
    schema change happens when the operator chooses, not as a side effect of adding a user.
    """
    url = settings.effective_database_url
    refuse_other_schema(url)
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            yield session
    except (CommandError, provisioning.ProvisioningError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
