"""A real softphone for tests: baresip (Debian package), registered to a registrar on 127.0.0.1.

    phone = start_baresip(workdir, user="1001", registrar=proxy.address)
    phone.wait_registered()
    ... ring sip:1001@proxy ... phone.wait_for_call() ...
    phone.command("sndcode", "1")        # an RFC 2833 key, from baresip's own telephone-event
    phone.stop()

It answers every call by itself (`answermode=auto`), sends a 440 Hz tone (`aufile`) and
plays what it hears into nowhere (`aubridge`). It is driven through its `ctrl_tcp` module
(netstring-framed JSON), and it logs events (registration, call state) there too. A missing
or failing baresip FAILS the test; it never skips.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.peers.rtpengine import reserved_rtp_block
from tests.support.ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
# baresip picks its RTP ports from this many, at the start of a reserved RTP block.
_RTP_PORTS = 20


def _config(sip_port: int, ctrl_port: int, rtp_first: int, tone: Path) -> str:
    return "\n".join(
        [
            "poll_method epoll",
            f"sip_listen {HOST}:{sip_port}",
            f"net_interface {HOST}",
            "audio_player aubridge,callnow",
            "audio_alert aubridge,callnow",
            f"audio_source aufile,{tone}",
            f"rtp_ports {rtp_first}-{rtp_first + _RTP_PORTS - 1}",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{ctrl_port}",
            "",
        ]
    )


@dataclass
class BaresipPhone:
    """A running baresip; created by `start_baresip` (or the `baresip_phone` fixture)."""

    workdir: Path
    process: subprocess.Popen[bytes]
    ctrl_port: int
    aor: str
    rtp_block: contextlib.ExitStack  # holds its RTP ports' block until stop()
    _sock: socket.socket | None = None
    _buffer: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def log_file(self) -> Path:
        return self.workdir / "baresip.log"

    def log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=5)
        return self._sock

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        sock = self._connect()
        deadline = time.monotonic() + timeout
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if colon and head.isdigit() and len(rest) > int(head):
                size = int(head)
                body, self._buffer = rest[:size], rest[size + 1 :]
                message: dict[str, Any] = json.loads(body)
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError(f"baresip closed its control socket\n{self.log_tail()}")
            self._buffer += chunk

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> str:
        """Run a baresip command (as typed at its console, without the '/'); its output."""
        payload = json.dumps({"command": name, "params": params, "token": name}).encode()
        self._connect().sendall(b"%d:%s," % (len(payload), payload))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read_message(deadline - time.monotonic())
            if message is None:
                break
            if message.get("response"):
                return str(message.get("data", ""))
            self.events.append(message)
        pytest.fail(f"baresip did not answer {name!r} within {timeout}s\n{self.log_tail()}")

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for an event of `kind` (REGISTER_OK, CALL_ESTABLISHED, CALL_CLOSED, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("type") == kind:
                    self.events.remove(event)
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"baresip reported no {kind} within {timeout}s\n{self.log_tail()}")
            message = self._read_message(min(left, 0.5))
            if message is not None and message.get("event"):
                self.events.append(message)

    def wait_registered(self, timeout: float = 10.0) -> str:
        """Wait until `reginfo` shows the account registered; its output."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.command("reginfo")
            if "OK" in info:
                return info
            if time.monotonic() > deadline:
                pytest.fail(f"baresip not registered after {timeout}s: {info}\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        with self.rtp_block:  # released once the process is gone
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self.process.poll() is not None:
                return
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(3)


def start_baresip(workdir: Path, user: str, registrar: tuple[str, int]) -> BaresipPhone:
    """A baresip that registers `sip:<user>@<registrar>` there and answers every call."""
    binary = shutil.which("baresip")
    if binary is None:
        pytest.fail("baresip is not installed (Debian package baresip); softphone tests need it")
    workdir.mkdir(parents=True, exist_ok=True)
    host, port = registrar
    aor = f"sip:{user}@{host}:{port}"
    # baresip also listens for SIP over TLS on sip_port + 1. Picked last, the SIP port lies
    # above the control port, so that port is not it; baresip binds it before it opens the
    # control port the start waits for, so later picks pass it over.
    ctrl_port = free_port(HOST)
    sip_port = free_port(HOST)
    # Its RTP range from a locked RTP block: a range starting at a port from free_port would
    # hold the very ports free_port hands out next.
    rtp_block = contextlib.ExitStack()
    rtp_first, _ = rtp_block.enter_context(reserved_rtp_block())
    tone = workdir / "tone.wav"  # 8 kHz: the ausine source of baresip 1.0 only does 48 kHz
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone), "synth", "60", "sine", "440"],
        check=True,
    )
    (workdir / "config").write_text(_config(sip_port, ctrl_port, rtp_first, tone))
    (workdir / "accounts").write_text(f"<{aor}>;regint=600;answermode=auto\n")
    (workdir / "contacts").write_text("")
    with open(workdir / "baresip.log", "wb") as log:
        process = subprocess.Popen(
            [binary, "-f", str(workdir)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    phone = BaresipPhone(workdir, process, ctrl_port, aor, rtp_block)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            phone._connect()
            return phone
        except OSError:
            time.sleep(0.05)
    phone.stop()
    pytest.fail(f"baresip did not start (exit {process.returncode})\n{phone.log_tail()}")


@pytest.fixture
def baresip_phone(tmp_path: Path) -> Iterator[Callable[..., BaresipPhone]]:
    """Factory: `baresip_phone("1001", registrar=proxy.address)`; stopped after the test."""
    phones: list[BaresipPhone] = []

    def start(user: str, registrar: tuple[str, int]) -> BaresipPhone:
        phone = start_baresip(tmp_path / f"baresip-{len(phones)}", user, registrar)
        phones.append(phone)
        return phone

    yield start
    for phone in phones:
        phone.stop()
