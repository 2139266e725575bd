"""`callnow serve`, `callnow demo` and `callnow engine`: the long-running processes.

These are the only commands besides `callnow db upgrade` that migrate the schema (on start).
"""

from __future__ import annotations

from typing import Annotated

import typer

from callnow.cli.common import ConfigOption, fail, load_settings
from callnow.cli.ports import first_problem, ports_to_bind
from callnow.config import Settings
from callnow.store import provisioning

# Seconds `callnow serve` lets open responses finish once told to stop.
SHUTDOWN_GRACE_S = 5


def serve(config: ConfigOption = None) -> None:
    """Run the service: web pages, portal, admin, Call API and the call engine.

    On SQLite all in one process; on PostgreSQL the engine runs in a child process of its own
    (setting `engine.process`).
    """
    settings = load_settings(config)
    _refuse_taken_ports(settings, web=True, engine=settings.engine.enabled)
    _serve(settings)


def _refuse_taken_ports(settings: Settings, *, web: bool, engine: bool) -> None:
    """Stop with one line naming the setting and the port, rather than a traceback later."""
    problem = first_problem(ports_to_bind(settings, web=web, engine=engine))
    if problem is not None:
        raise fail(problem)


def _serve(settings: Settings) -> None:
    import uvicorn

    from callnow import logs
    from callnow.bootstrap import freeze_startup_objects, prepare, tune_thread_switching
    from callnow.compose import create_app

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


def demo(config: ConfigOption = None) -> None:
    """Run the service with SIPp playing the owner's phone and the visitor's phone."""
    from callnow.demo import DemoError, start_phones

    settings = load_settings(config)
    _refuse_taken_ports(settings, web=True, engine=settings.engine.enabled)
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


def engine(
    config: ConfigOption = None,
    settings_on_stdin: Annotated[
        bool,
        typer.Option(hidden=True, help="Read the settings as one line of JSON from stdin."),
    ] = False,
    ready_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Write one byte to this descriptor once running."),
    ] = None,
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
        _refuse_taken_ports(settings, web=False, engine=True)
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
