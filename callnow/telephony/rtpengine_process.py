"""Start and stop a private rtpengine daemon (userspace forwarding, loopback, no kernel module).

Used by `callnow serve` in `spawn` mode and by the test fixtures. The daemon is started with
`--config-file=none`: without it rtpengine also reads Debian's /etc/rtpengine/rtpengine.conf,
whose `listen-cli`/`listen-http` on fixed ports (2224/2225) collide between instances.

It logs at NOTICE (`--log-level=5`), not rtpengine's default INFO: INFO is about 29 lines per
callback (every ng request and reply, the packet statistics of every deleted call), which the
daemon formats and this process reads from the pipe only to keep a tail for start-up errors.
At 100 callbacks/s that was 3,000 lines a second for nobody. Warnings and errors still come
through; for INFO, run rtpengine yourself and use `external` mode.

Works from asyncio (`async with RtpengineProcess(settings)`) and from sync code
(`with RtpengineProcess(settings)`, or `start_sync()`/`stop()`), e.g. in pytest fixtures.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ctypes
import shutil
import signal
import subprocess
import threading
import time
from types import TracebackType
from typing import IO

from callnow.config import RtpengineSettings
from callnow.telephony.rtpengine import RtpengineClient, RtpengineUnavailable

_STDERR_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


class RtpengineStartError(RuntimeError):
    """The daemon is missing, exited, or did not answer `ping` in time."""


def rtpengine_command(
    settings: RtpengineSettings,
    executable: str = "rtpengine",
    media_interface: str | None = None,
) -> list[str]:
    """The daemon's command line; media is on `media_interface`, by default the ng host."""
    return [
        executable,
        "--config-file=none",
        f"--interface={media_interface or settings.ng_host}",
        f"--listen-ng={settings.ng_host}:{settings.ng_port}",
        "--table=-1",
        "--foreground",
        "--log-stderr",
        "--log-level=5",
        f"--dtmf-log-dest={settings.ng_host}:{settings.dtmf_log_port}",
        f"--port-min={settings.port_min}",
        f"--port-max={settings.port_max}",
        "--no-fallback",
        f"--num-threads={settings.num_threads}",
        f"--media-num-threads={settings.media_num_threads}",
    ]


class RtpengineProcess:
    """One rtpengine child process bound to `settings`' ports."""

    def __init__(
        self,
        settings: RtpengineSettings,
        *,
        executable: str = "rtpengine",
        start_timeout_s: float = 5.0,
        media_interface: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.executable = executable
        self.media_interface = media_interface
        self.start_timeout_s = start_timeout_s
        self.extra_args = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._stderr_thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    def command(self) -> list[str]:
        return [
            *rtpengine_command(self.settings, self.executable, self.media_interface),
            *self.extra_args,
        ]

    # -- start -----------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self._proc is not None:
            raise RuntimeError("rtpengine already started")
        if self.settings.port_min > self.settings.port_max:
            raise RtpengineStartError(
                f"RTP port range {self.settings.port_min}-{self.settings.port_max} is empty"
            )
        path = shutil.which(self.executable)
        if path is None:
            raise RtpengineStartError(
                f"{self.executable!r} not found on PATH; install Debian's rtpengine-daemon"
            )
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        # Drain stderr continuously: a full pipe would block the daemon's logging.
        assert self._proc.stderr is not None
        self._stderr_thread = threading.Thread(
            target=self._drain, args=(self._proc.stderr,), daemon=True
        )
        self._stderr_thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr_tail.append(raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def _failure(self, why: str) -> RtpengineStartError:
        command = " ".join(self.command())
        tail = self.stderr_tail or "(no output)"
        return RtpengineStartError(f"{why}\ncommand: {command}\nstderr tail:\n{tail}")

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        probe = RtpengineClient(
            self.settings.ng_host, self.settings.ng_port, timeout_s=0.25, retries=0
        )
        try:
            while True:
                if self._proc.poll() is not None:
                    # the drain thread ends at EOF; wait for it so the error has the last words
                    if self._stderr_thread is not None:
                        await asyncio.to_thread(self._stderr_thread.join, 1.0)
                    raise self._failure(f"rtpengine exited with status {self._proc.returncode}")
                try:
                    await probe.ping()
                    return
                except RtpengineUnavailable:
                    if time.monotonic() >= deadline:
                        raise self._failure(
                            f"rtpengine did not answer ping within {self.start_timeout_s:g}s"
                        ) from None
        finally:
            await probe.close()

    async def start(self) -> None:
        self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            await self.astop()
            raise

    def start_sync(self) -> None:
        """Start from sync code; blocks until the daemon answers `ping`."""
        self._spawn()
        try:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(self._wait_ready())
            else:
                # Called from sync code inside a running loop (e.g. a sync fixture of an async
                # test): asyncio.run would refuse, so wait in a helper thread with its own loop.
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, self._wait_ready()).result()
        except BaseException:
            self.stop()
            raise

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout_s: float = 3.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`. Returns the exit status. Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(1.0)
        return proc.returncode

    async def astop(self, timeout_s: float = 3.0) -> int | None:
        return await asyncio.to_thread(self.stop, timeout_s)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- context managers ------------------------------------------------------------------

    async def __aenter__(self) -> RtpengineProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def __enter__(self) -> RtpengineProcess:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """Linux: SIGTERM the daemon if we die without stopping it (no orphans holding ports).

    The kernel ties this to the *thread* that spawned the daemon, so start it from a thread
    that lives as long as the service (the main thread / the event loop's thread).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
