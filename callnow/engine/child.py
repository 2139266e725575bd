"""The call engine as a child process of `callnow serve`: started, watched, restarted, stopped.

On PostgreSQL `callnow serve` gives the engine a process of its own, so a burst of form posts
never holds a call's next database write or SIP message behind the web's Python work: each
process has its own GIL. The child is `callnow engine --settings-on-stdin --ready-fd N`:

- it reads the parent's settings from stdin, as one line of JSON (the parent has already
  migrated the database and generated the secret key, so the child runs with exactly those);
- it writes `ready` to file descriptor N once it takes calls, and closes it;
- it drains, as on SIGTERM, when its stdin reaches end of file (a SIGTERM then hurries it).
  That happens when the parent closes it to stop the child, and also when the parent dies,
  even by SIGKILL;
- with `--wake-fd M` (where no NOTIFY reaches it: SQLite), it claims at once whenever a byte
  arrives on descriptor M, the read end of a pipe the web writes one byte to after each commit
  that queued work (`EngineChild.wake`). The pipe outlives restarts: a new child reads what
  its predecessor left and looks once. A write to a full pipe (an engine that stopped reading)
  is dropped: a lost wake-up costs at most the poll interval, and never a request, which is in
  the database already.

The child runs in a session of its own, so a Ctrl-C at the terminal reaches only the parent,
which then stops the child: an engine that stopped by itself is never mistaken for a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Literal

from callnow.config import Settings

log = logging.getLogger(__name__)

READY = b"ready\n"
# Under settings.data_dir: the trunk registrations as the engine last wrote them, for the web's
# health (kept here, not beside sippy: importing sippy into the web process leaves a ticker whose
# release at exit can crash the interpreter).
REGISTRATIONS_FILE = "trunk-registrations.json"
# The JSON of a Settings is a few kilobytes; a line longer than this is not one.
MAX_SETTINGS_BYTES = 1_000_000


class EngineDidNotStart(RuntimeError):
    pass


@dataclass(frozen=True)
class RestartDelays:
    """How long to wait before starting a crashed engine again: doubling, within bounds.

    An engine that ran for `settled_after_s` before it died starts again after `first_s`;
    one that keeps dying at start-up is tried less and less often, up to every `longest_s`.
    """

    first_s: float = 1.0
    longest_s: float = 30.0
    settled_after_s: float = 60.0

    def after(self, previous_delay_s: float | None, ran_for_s: float) -> float:
        if previous_delay_s is None or ran_for_s >= self.settled_after_s:
            return self.first_s
        return min(previous_delay_s * 2, self.longest_s)


def engine_command() -> list[str]:
    return [sys.executable, "-m", "callnow", "engine"]


class EngineChild:
    """Runs `callnow engine` beside this process until `stop`, starting it again if it dies."""

    def __init__(
        self,
        settings: Settings,
        *,
        command: Sequence[str] | None = None,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 30.0,
        delays: RestartDelays = RestartDelays(),
        on_restart: Callable[[int], None] | None = None,
        wake_pipe: bool = False,
    ) -> None:
        """`wake_pipe`: give the child a pipe to be woken through (`wake`)."""
        self._settings_line = settings.model_dump_json().encode() + b"\n"
        self._command = list(command or engine_command())
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._delays = delays
        self._on_restart = on_restart
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher = threading.Thread(target=self._watch, name="engine-child", daemon=True)
        self._wake_lock = threading.Lock()
        self._wake_read: int | None = None
        self._wake_write: int | None = None
        if wake_pipe:
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_write, False)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    @property
    def status(self) -> Literal["running", "restarting"]:
        """`restarting` from the moment it is found dead until a new one is ready."""
        with self._lock:
            running = self._process is not None and self._process.poll() is None
        return "running" if running else "restarting"

    def start(self) -> None:
        """Start the engine and return once it takes calls; `EngineDidNotStart` if it cannot."""
        process = self._spawn_until_ready()
        if process is None:
            raise EngineDidNotStart("stopped while the call engine was starting")
        self._process = process
        self._watcher.start()

    def stop(self) -> int | None:
        """Close the engine's stdin, kill it if it takes too long to stop; its exit code."""
        self._stopping.set()
        with self._lock:
            process = self._process
        code = _close_and_wait(process, self._stop_timeout_s) if process else None
        if self._watcher.is_alive():
            self._watcher.join(timeout=self._stop_timeout_s)
        if not self._watcher.is_alive():  # else it may still be starting a child with it
            with self._wake_lock:
                for fd in (self._wake_read, self._wake_write):
                    if fd is not None:
                        os.close(fd)
                self._wake_read = self._wake_write = None
        return code

    def wake(self) -> None:
        """Something was queued: the engine should claim now. Safe from any thread, never
        blocks; without a wake pipe (PostgreSQL: NOTIFY wakes it) it does nothing."""
        with self._wake_lock:
            if self._wake_write is None:
                return
            with contextlib.suppress(BlockingIOError):  # full: it has wake-ups unread anyway
                os.write(self._wake_write, b"!")

    def hurry(self) -> None:
        """While `stop` waits for a draining engine: hang up its calls now (a second SIGTERM)."""
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)

    # -- watching -----------------------------------------------------------------------------

    def _watch(self) -> None:
        delay: float | None = None
        started = time.monotonic()
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is not None:
                code = process.wait()
                if self._stopping.is_set():
                    return
                delay = self._delays.after(delay, time.monotonic() - started)
                log.error(
                    "the call engine (pid %s) exited with code %s; starting it again in %.0f s",
                    process.pid,
                    code,
                    delay,
                )
            if self._stopping.wait(delay or 0):
                return
            started = time.monotonic()
            try:
                replacement = self._spawn_until_ready()
            except EngineDidNotStart as exc:
                log.error("%s", exc)
                replacement = None
                delay = self._delays.after(delay, 0.0)
            with self._lock:
                self._process = replacement
                # `stop` may have taken the dead one just before: then this one is ours to stop.
                stopped_meanwhile = self._stopping.is_set()
            if replacement is not None and stopped_meanwhile:
                _close_and_wait(replacement, self._stop_timeout_s)
                return
            if replacement is not None:
                log.warning("the call engine runs again (pid %s)", replacement.pid)
                if self._on_restart is not None:
                    self._on_restart(replacement.pid)

    # -- starting -----------------------------------------------------------------------------

    def _spawn_until_ready(self) -> subprocess.Popen[bytes] | None:
        ready_read, ready_write = os.pipe()
        arguments = ["--settings-on-stdin", "--ready-fd", str(ready_write)]
        pass_fds = [ready_write]
        if self._wake_read is not None:
            arguments += ["--wake-fd", str(self._wake_read)]
            pass_fds.append(self._wake_read)
        try:
            process = subprocess.Popen(
                [*self._command, *arguments],
                stdin=subprocess.PIPE,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(ready_read)
            raise EngineDidNotStart(f"the call engine could not be started: {exc}") from exc
        finally:
            os.close(ready_write)
        try:
            assert process.stdin is not None
            process.stdin.write(self._settings_line)
            process.stdin.flush()
            if self._wait_for_ready(ready_read):
                return process
        except BrokenPipeError:
            pass  # it died at once; its exit code says more below
        finally:
            os.close(ready_read)
        code = _close_and_wait(process, self._stop_timeout_s)
        if self._stopping.is_set():
            return None
        raise EngineDidNotStart(
            f"the call engine did not start (exit code {code}); its log is above"
        )

    def _wait_for_ready(self, ready_read: int) -> bool:
        deadline = time.monotonic() + self._start_timeout_s
        received = b""
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("the call engine was not ready after %.0f s", self._start_timeout_s)
                return False
            readable, _, _ = select.select([ready_read], [], [], min(left, 0.2))
            if readable:
                chunk = os.read(ready_read, len(READY))
                if not chunk:
                    return False  # the write end closed: it exited before it was ready
                received += chunk
                if received == READY:
                    return True
        return False


def _close_and_wait(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.error("the call engine (pid %s) did not stop in %.0f s; killed", process.pid, timeout_s)
        process.kill()
        return process.wait()


# -- the child's side ---------------------------------------------------------------------------


def read_settings(stream: IO[bytes]) -> Settings:
    line = stream.readline(MAX_SETTINGS_BYTES + 1)
    if not line.endswith(b"\n"):
        raise ValueError("expected the settings as one line of JSON on stdin")
    return Settings.model_validate_json(line)


def report_ready(ready_fd: int) -> None:
    with os.fdopen(ready_fd, "wb") as ready:
        ready.write(READY)


def wake_on(wake_fd: int, wake: Callable[[], None]) -> None:
    """Call `wake` on this thread's event loop each time bytes arrive on `wake_fd` (the read
    end of the parent's wake pipe): everything waiting is read at once, for one wake-up."""
    loop = asyncio.get_running_loop()
    os.set_blocking(wake_fd, False)

    def readable() -> None:
        try:
            arrived = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if not arrived:  # no writer left: the parent is gone, and stdin says so too
            loop.remove_reader(wake_fd)
            return
        wake()

    loop.add_reader(wake_fd, readable)


def when_closed(stream: IO[bytes], then: Callable[[], object]) -> threading.Thread:
    """Call `then` once `stream` (the parent's end of our stdin) reaches end of file."""

    def wait() -> None:
        while stream.read(4096):
            pass
        then()

    thread = threading.Thread(target=wait, name="parent-watch", daemon=True)
    thread.start()
    return thread
