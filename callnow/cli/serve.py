"""`callnow serve`, `callnow demo` and `callnow engine`: the long-running processes.

These are the only commands besides `callnow db upgrade` that migrate the schema (on start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from callnow.cli.common import ConfigOption, fail, load_settings
from callnow.cli.ports import first_problem, ports_to_bind
from callnow.config import Settings
from callnow.store import provisioning

if TYPE_CHECKING:
    import uvicorn

    from callnow.web.context import AppState

log = logging.getLogger(__name__)
# Seconds `callnow serve` lets open responses finish once told to stop.
SHUTDOWN_GRACE_S = 5
# Beyond the drain time and the grace: what stopping the engine and closing pools may take.
# Past the whole bound the process exits anyway (a stuck thread must not keep it up).
STOP_MARGIN_S = 60


def stop_bound_s(settings: Settings) -> float:
    """The longest a service process takes to exit once told to stop."""
    return settings.engine.drain_s + SHUTDOWN_GRACE_S + STOP_MARGIN_S


def exit_anyway_after(seconds: float) -> None:
    """Arm a watchdog thread: if the process is still here after `seconds`, it exits.

    The clean stop runs on the event loop and worker threads; a loop starved by a flood or a
    thread stuck in a driver must not keep a stopped service up (and a supervisor waiting)."""

    def watch() -> None:
        if not done.wait(seconds):
            log.error("did not stop within %.0f s of being told to; exiting now", seconds)
            logging.shutdown()
            os._exit(1)

    done = threading.Event()
    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()


def _draining_server(config: uvicorn.Config, state: AppState, bound_s: float) -> uvicorn.Server:
    """A uvicorn server whose first SIGTERM (or Ctrl-C) drains the engine beside the web
    before the web stops: health answers `draining` meanwhile, calls in progress end by
    themselves. A second signal hurries the drain (calls hung up cleanly, records and charges
    stored); the web then stops accepting, finishes what is in flight, and the process exits.
    Unlike uvicorn's own second Ctrl-C it never skips the shutdown that stops the engine."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        hurry: asyncio.Event | None = None
        _drain_task: asyncio.Task[None] | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            loop = _running_loop()
            # A signal handler interrupts the loop anywhere: it only schedules, thread-safely.
            if self.hurry is not None:
                log.warning("told to stop again: hanging up calls in progress now")
                if loop is not None:
                    loop.call_soon_threadsafe(self.hurry.set)
                return
            exit_anyway_after(bound_s)
            drain = state.drain
            if drain is None or loop is None:
                self.should_exit = True
                return
            self.hurry = asyncio.Event()
            hurry = self.hurry

            async def drain_then_exit() -> None:
                try:
                    await drain(hurry)
                except Exception:
                    log.exception("draining the engine failed; stopping")
                finally:
                    self.should_exit = True

            def start() -> None:
                self._drain_task = loop.create_task(drain_then_exit(), name="drain")

            log.info("told to stop: draining the call engine first")
            loop.call_soon_threadsafe(start)

    return DrainingServer(config)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def serve(config: ConfigOption = None) -> None:
    """Run the service: web pages, portal, admin, Call API and the call engine.

    The engine runs in a child process of its own (setting `engine.process`; `shared` keeps it
    in this process).
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
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_config=None,
        # The C parser and libuv loop (dependencies, so never silently the pure-Python ones):
        # a form post's HTTP parsing and loop turns cost about a tenth of its CPU less.
        http="httptools",
        loop="uvloop",
        proxy_headers=False,
        server_header=False,
        # Open status streams would hold a restart for up to their ten minutes; after this
        # grace they are closed, and browsers reconnect. Then the engine stops (lifespan).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    _draining_server(config, app.state.callnow, stop_bound_s(settings)).run()


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
    wake_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Claim at once when bytes arrive on this descriptor."),
    ] = None,
    drain: Annotated[
        float | None,
        typer.Option(
            "--drain",
            min=0,
            max=3600,
            help="Seconds calls in progress may go on once told to stop (SIGTERM); "
            "overrides engine.drain_s. 0 hangs up at once.",
        ),
    ] = None,
) -> None:
    """Run only the call engine: claim queued requests and place the calls (no web).

    SIGTERM or Ctrl-C drains it: it stops claiming, lets calls in progress end by themselves
    for up to `engine.drain_s` (or `--drain`), then hangs up what is left and exits; a second
    signal hangs up at once."""
    import sys

    from callnow import logs
    from callnow.bootstrap import freeze_startup_objects, prepare, tune_thread_switching
    from callnow.engine import child
    from callnow.engine.runtime import EngineRuntime
    from callnow.metrics import Metrics
    from callnow.store.db import make_engine, make_session_factory, pool_use

    # As the child of `callnow serve` (engine/child.py), which has prepared the database.
    if settings_on_stdin:
        settings = child.read_settings(sys.stdin.buffer)
        logs.configure(settings.log_level, settings.log_format, process="engine")
    else:
        settings = load_settings(config)
        _refuse_taken_ports(settings, web=False, engine=True)
        logs.configure(settings.log_level, settings.log_format)
        settings, _ = prepare(settings)
    if drain is not None:
        settings = settings.model_copy(
            update={"engine": settings.engine.model_copy(update={"drain_s": drain})}
        )
    tune_thread_switching()

    async def run() -> None:
        stop = asyncio.Event()
        hurry = asyncio.Event()
        loop = asyncio.get_running_loop()

        def told_to_stop() -> None:
            # The first time: drain. Again: hang up what is left now.
            if stop.is_set():
                hurry.set()
            else:
                exit_anyway_after(settings.engine.drain_s + STOP_MARGIN_S)
                stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, told_to_stop)
        if settings_on_stdin:
            child.when_closed(sys.stdin.buffer, lambda: loop.call_soon_threadsafe(told_to_stop))
        # Every connection of this process is the engine's: urgent, on SQLite, before the web's.
        db_engine = make_engine(settings.effective_database_url, urgent=True)
        metrics = Metrics("engine")
        metrics.watch_pool("engine", pool_use(db_engine))
        listener = None
        if settings.metrics.enabled:
            listener = metrics.serve(settings.metrics.host, settings.metrics.engine_port)
        runtime = await EngineRuntime.start(
            settings, make_session_factory(db_engine), metrics=metrics
        )
        typer.echo(f"engine {runtime.dispatcher.engine_id} running", err=True)
        if wake_fd is not None:
            # The web of `callnow serve` wakes this engine through a pipe (engine/child.py).
            child.wake_on(wake_fd, runtime.dispatcher.wake)
        freeze_startup_objects()
        if ready_fd is not None:
            child.report_ready(ready_fd)
        await stop.wait()
        await runtime.drain(settings.engine.drain_s, hurry)
        if listener is not None:
            listener.stop()
        db_engine.dispose()

    asyncio.run(run())
