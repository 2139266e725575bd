"""The `callnow` command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from callnow.billing.cli import billing_app
from callnow.config import Settings
from callnow.store import provisioning
from callnow.store.db import make_engine, make_session_factory, migrate, transaction

# Seconds `callnow serve` lets open responses finish once told to stop.
SHUTDOWN_GRACE_S = 5

app = typer.Typer(
    help="CallNow: web callback requests for hosted PBX extensions.", no_args_is_help=True
)
admin_app = typer.Typer(
    help="Provision tenants, users, extensions and CallNow pages.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(db_app, name="db")
app.add_typer(billing_app, name="billing")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file", envvar="CALLNOW_CONFIG")
]


def load_settings(config: Path | None) -> Settings:
    import os

    previous = os.environ.get("CALLNOW_CONFIG")
    if config is not None:
        os.environ["CALLNOW_CONFIG"] = str(config)
    try:
        return Settings()
    except Exception as exc:  # settings errors are the user's to fix: say what is wrong
        typer.secho(f"Invalid configuration: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    finally:
        if previous is None:
            os.environ.pop("CALLNOW_CONFIG", None)
        else:
            os.environ["CALLNOW_CONFIG"] = previous


@contextmanager
def _session(config: Path | None) -> Iterator[Session]:
    settings = load_settings(config)
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            yield session
    except provisioning.ProvisioningError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Run the service: web pages, portal, admin, Call API and the call engine.

    On SQLite all in one process; on PostgreSQL the engine runs in a child process of its own
    (setting `engine.process`).
    """
    _serve(load_settings(config))


def _serve(settings: Settings) -> None:
    import uvicorn

    from callnow import logs
    from callnow.bootstrap import freeze_startup_objects, prepare, tune_thread_switching
    from callnow.web.app import create_app

    logs.configure(settings.log_level, settings.log_format)
    settings, _ = prepare(settings)
    tune_thread_switching()
    base = settings.web.public_base_url.rstrip("/")
    if settings.demo_data:
        typer.echo(
            "\nCallNow is running.\n"
            f"  Public page:   {base}/callnow/john_doe   (or {base}/callnow?id=john_doe)\n"
            f"  Owner portal:  {base}/portal   ({provisioning.DEMO_OWNER_EMAIL} / "
            f"{provisioning.DEMO_OWNER_PASSWORD})\n"
            f"  Admin:         {base}/admin/   ({provisioning.DEMO_ADMIN_EMAIL} / "
            f"{provisioning.DEMO_ADMIN_PASSWORD})\n"
            f"  Call API:      {base}/docs\n"
        )
    app = create_app(settings, with_engine=settings.engine.enabled)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        # Open status streams would hold a restart for up to their ten minutes; after this
        # grace they are closed, and browsers reconnect. Then the engine stops (lifespan).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


@app.command()
def demo(config: ConfigOption = None) -> None:
    """Run the service with SIPp playing the owner's phone and the visitor's phone."""
    from callnow.demo import DemoError, start_phones

    settings = load_settings(config)
    try:
        owner, callee = start_phones(settings.data_dir / "demo-phones")
    except DemoError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    sip = settings.sip.model_copy(
        update={"owner_uri_template": f"sip:{{internal}}@127.0.0.1:{owner.port}"}
    )
    trunk = settings.trunk.model_copy(
        update={"uri_template": f"sip:{{e164}}@127.0.0.1:{callee.port}"}
    )
    typer.echo(
        f"Demo phones: the owner's extension answers on 127.0.0.1:{owner.port} and presses 1;"
        f" the visitor's phone answers on 127.0.0.1:{callee.port} and talks for 10 s."
    )
    try:
        _serve(settings.model_copy(update={"sip": sip, "trunk": trunk, "demo_data": True}))
    finally:
        owner.stop()
        callee.stop()


@app.command()
def engine(
    config: ConfigOption = None,
    settings_on_stdin: Annotated[bool, typer.Option(hidden=True)] = False,
    ready_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run only the call engine: claim queued requests and place the calls (no web)."""
    import asyncio
    import signal
    import sys

    from callnow import logs
    from callnow.bootstrap import freeze_startup_objects, prepare, tune_thread_switching
    from callnow.engine import child
    from callnow.engine.runtime import EngineRuntime
    from callnow.store.db import make_engine, make_session_factory

    # As the child of `callnow serve` (engine/child.py), which has prepared the database.
    if settings_on_stdin:
        settings = child.read_settings(sys.stdin.buffer)
        logs.configure(settings.log_level, settings.log_format, process="engine")
    else:
        settings = load_settings(config)
        logs.configure(settings.log_level, settings.log_format)
        settings, _ = prepare(settings)
    tune_thread_switching()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if settings_on_stdin:
            child.when_closed(sys.stdin.buffer, lambda: loop.call_soon_threadsafe(stop.set))
        db_engine = make_engine(settings.effective_database_url)
        runtime = await EngineRuntime.start(settings, make_session_factory(db_engine))
        typer.echo(f"engine {runtime.dispatcher.engine_id} running", err=True)
        freeze_startup_objects()
        if ready_fd is not None:
            child.report_ready(ready_fd)
        await stop.wait()
        await runtime.stop()
        db_engine.dispose()

    asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every migration to the configured database."""
    settings = load_settings(config)
    migrate(settings.effective_database_url)
    typer.echo("Database is at the newest schema.")


@admin_app.command("create-tenant")
def create_tenant(
    name: str,
    region: Annotated[str, typer.Option(help="Country for national numbers")] = "AU",
    timezone: str = "Australia/Sydney",
    product_line: Annotated[str, typer.Option(help="pbx or home")] = "pbx",
    call_api: Annotated[bool, typer.Option(help="Call API access (needed for CallNow)")] = True,
    config: ConfigOption = None,
) -> None:
    with _session(config) as session:
        tenant = provisioning.create_tenant(
            session,
            name,
            product_line=product_line,
            region=region,
            timezone=timezone,
            call_api_access=call_api,
        )
        typer.echo(f"Tenant {tenant.id} '{tenant.name}' created.")


@admin_app.command("create-user")
def create_user(
    email: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="CALLNOW_PASSWORD"
        ),
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant name")] = None,
    role: Annotated[str, typer.Option(help="platform_admin, tenant_admin or owner")] = "owner",
    name: str = "",
    config: ConfigOption = None,
) -> None:
    with _session(config) as session:
        found = provisioning.tenant_by_name(session, tenant) if tenant else None
        if tenant and found is None:
            raise provisioning.ProvisioningError(f"No tenant named '{tenant}'.")
        user = provisioning.create_user(
            session, email, password, role=role, tenant=found, display_name=name
        )
        typer.echo(f"User {user.id} {user.email} ({user.role}) created.")


@admin_app.command("create-extension")
def create_extension(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    internal: Annotated[str, typer.Option(help="Internal number, e.g. 001002")],
    external: Annotated[str, typer.Option(help="External number, e.g. '02 9037 1234'")],
    owner: Annotated[str | None, typer.Option(help="Owner's email")] = None,
    name: str = "",
    config: ConfigOption = None,
) -> None:
    from callnow.store import accounts

    with _session(config) as session:
        found = provisioning.tenant_by_name(session, tenant)
        if found is None:
            raise provisioning.ProvisioningError(f"No tenant named '{tenant}'.")
        user = accounts.by_email(session, owner) if owner else None
        if owner and user is None:
            raise provisioning.ProvisioningError(f"No user with the email {owner}.")
        extension = provisioning.create_extension(
            session,
            found,
            internal_number=internal,
            external_number=external,
            display_name=name,
            owner=user,
        )
        typer.echo(f"Extension {extension.internal_number} ({extension.external_number}) created.")


@admin_app.command("enable-callnow")
def enable_callnow(
    internal: Annotated[str, typer.Option(help="The extension's internal number")],
    callnow_id: Annotated[str, typer.Option("--id", help="The CallNow ID, e.g. john_doe")],
    config: ConfigOption = None,
) -> None:
    with _session(config) as session:
        extension = provisioning.extension_by_internal(session, internal)
        if extension is None:
            raise provisioning.ProvisioningError(f"No extension {internal}.")
        profile = provisioning.enable_callnow(session, extension, callnow_id)
        typer.echo(f"CallNow is on for {internal}: /callnow/{profile.callnow_id}")


@admin_app.command("do-not-call")
def do_not_call_list(
    action: Annotated[str, typer.Argument(help="add, remove or list")],
    number: Annotated[str | None, typer.Argument(help="The number, e.g. 0412 345 678")] = None,
    reason: str = "",
    config: ConfigOption = None,
) -> None:
    """Keep numbers that must never be called by any CallNow page."""
    from callnow.domain.phone import InvalidNumber, parse_caller_number
    from callnow.store import do_not_call

    with _session(config) as session:
        if action == "list":
            for entry in do_not_call.listed(session):
                typer.echo(f"{entry.e164}\t{entry.added_at:%Y-%m-%d}\t{entry.reason}")
            return
        if action not in ("add", "remove") or not number:
            raise provisioning.ProvisioningError("Use: do-not-call add|remove NUMBER, or list.")
        try:
            e164 = parse_caller_number(number, load_settings(config).default_region).e164
        except InvalidNumber as exc:
            raise provisioning.ProvisioningError(str(exc)) from exc
        if action == "add":
            added = do_not_call.add(session, e164, reason)
            typer.echo(f"{e164} {'added to' if added else 'was already on'} the do-not-call list.")
        else:
            removed = do_not_call.remove(session, e164)
            typer.echo(
                f"{e164} {'removed from' if removed else 'was not on'} the do-not-call list."
            )


if __name__ == "__main__":
    app()
