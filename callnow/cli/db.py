"""`callnow db …`: the database schema, changed only when the operator says so."""

from __future__ import annotations

import typer

from callnow.cli.common import ConfigOption, load_settings
from callnow.store.db import migrate, schema_revisions

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(config: ConfigOption = None) -> None:
    """Apply every migration to the configured database."""
    settings = load_settings(config)
    migrate(settings.effective_database_url)
    typer.echo("Database is at the newest schema.")


@db_app.command("status")
def status(config: ConfigOption = None) -> None:
    """Show the database's schema revision and the one this version needs (exit 1 if behind)."""
    schema = schema_revisions(load_settings(config).effective_database_url)
    typer.echo(f"Database schema: {schema.current or 'none'}; this version needs: {schema.head}.")
    if schema.current != schema.head:
        raise typer.Exit(1)
