"""The `callnow` command (console script and `python -m callnow`).

Each group lives in its own module; this one only assembles them. Nothing outside
`callnow.cli` imports from here, so no layer below the command line depends on it.
"""

from __future__ import annotations

import typer

from callnow.cli import serve
from callnow.cli.admin import admin_app
from callnow.cli.billing import billing_app
from callnow.cli.db import db_app

app = typer.Typer(
    help="CallNow: web callback requests for hosted PBX extensions.", no_args_is_help=True
)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.command("engine")(serve.engine)
app.add_typer(admin_app, name="admin")
app.add_typer(db_app, name="db")
app.add_typer(billing_app, name="billing")


def main() -> None:
    """Entry point of the `callnow` console script."""
    app(prog_name="callnow")
