"""Fixtures that start SIPp peers for a test.

    def test_busy(sipp_peer):
        peer = sipp_peer("busy.xml")             # a SIPp UAS on a free 127.0.0.1 UDP port
        ... dial peer.uri("1001") ...
        assert peer.wait() == 0                  # the scenario ran to its end
        invite = peer.received("INVITE")[0]      # what the peer saw, parsed from -trace_msg
        assert invite.header("From") ...

Scenarios live in peers/sipp/ (shared with `callnow demo`). Ports are never fixed: tests run
in parallel with other people's. A missing or failing sipp FAILS the test; it never skips.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from callnow.telephony.sip import SipStack
from tests.support.ports import free_port

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "peers" / "sipp"
HOST = "127.0.0.1"
START_TIMEOUT_S = 5.0
# A hard limit so a forgotten peer can never outlive its test for long.
PEER_LIFETIME = "60s"
# SIPp exit code for "fatal error binding a socket" (-2): another process took the port.
_BIND_FAILED = 254

_COMPACT = {
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "v": "via",
    "c": "content-type",
    "l": "content-length",
}
_LOG_SEPARATOR = "-" * 47


@dataclass(frozen=True)
class SipMessage:
    """One message from a SIPp message log, seen from the peer's side."""

    direction: str  # "received" by the peer or "sent" by the peer
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: str = ""
    # When SIPp logged it (its wall clock, seconds since the epoch); 0.0 if the log had none.
    logged_at: float = 0.0

    @property
    def method(self) -> str | None:
        """Request method (INVITE, ACK, ...) or None for a response."""
        return None if self.start_line.startswith("SIP/2.0") else self.start_line.split()[0]

    @property
    def status(self) -> int | None:
        """Response status code, or None for a request."""
        if not self.start_line.startswith("SIP/2.0"):
            return None
        return int(self.start_line.split()[1])

    @property
    def request_uri(self) -> str | None:
        return None if self.method is None else self.start_line.split()[1]

    def header_values(self, name: str) -> list[str]:
        """All values of a header (case-insensitive, compact forms understood)."""
        wanted = _COMPACT.get(name.lower(), name.lower())
        return [v for n, v in self.headers if _COMPACT.get(n.lower(), n.lower()) == wanted]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("CSeq") or "0 ?").split()
        return int(number), method

    def __str__(self) -> str:
        return self.start_line


def parse_message_log(text: str) -> list[SipMessage]:
    """Parse a SIPp `-trace_msg` log into messages, in log order."""
    messages = []
    for chunk in text.replace("\r", "").split(_LOG_SEPARATOR):
        lines = chunk.split("\n")
        # lines[0] is the timestamp, lines[1] "UDP message received [..]" / "... sent (..)".
        if len(lines) < 4 or "message" not in lines[1]:
            continue
        direction = "received" if "received" in lines[1] else "sent"
        rest = lines[2:]
        while rest and not rest[0].strip():
            rest = rest[1:]
        if not rest:
            continue
        start_line, rest = rest[0].strip(), rest[1:]
        headers = []
        body_lines: list[str] = []
        for i, line in enumerate(rest):
            if not line.strip():
                body_lines = rest[i + 1 :]
                break
            if line[0] in " \t" and headers:  # folded header line
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        body = "\n".join(body_lines).strip("\n")
        messages.append(
            SipMessage(direction, start_line, tuple(headers), body, _log_time(lines[0]))
        )
    return messages


def _log_time(stamp: str) -> float:
    try:
        return datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return 0.0


def _udp_port_bound(port: int) -> bool:
    """Is something bound to HOST:port? Read from /proc so we never race for the port."""
    needle = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == needle for line in table.readlines()[1:])


@dataclass
class SippPeer:
    """A running SIPp UAS. Created by the `sipp_peer` fixture."""

    scenario: Path
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def uri(self, user: str, params: str = "") -> str:
        return f"sip:{user}@{HOST}:{self.port}{params}"

    @property
    def message_file(self) -> Path:
        return self.workdir / "messages.log"

    def messages(self) -> list[SipMessage]:
        """Everything the peer received and sent so far."""
        if not self.message_file.exists():
            return []
        return parse_message_log(self.message_file.read_text(errors="replace"))

    def received(self, method: str | None = None) -> list[SipMessage]:
        """Requests and responses the peer received (filtered by request method if given)."""
        got = [m for m in self.messages() if m.direction == "received"]
        return got if method is None else [m for m in got if m.method == method]

    def wait_for_request(self, method: str, timeout: float = 5.0) -> SipMessage:
        """Wait until the peer has received a `method` request (polls its message log)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.received(method)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                pytest.fail(f"SIPp {self.scenario.name} received no {method} within {timeout}s")
            time.sleep(0.02)

    def sent(self) -> list[SipMessage]:
        return [m for m in self.messages() if m.direction == "sent"]

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the scenario to finish (`-m 1`); returns SIPp's exit code (0 = success)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"SIPp {self.scenario.name} still running after {timeout}s; it saw: "
                f"{[str(m) for m in self.messages()]}"
            )

    def diagnostics(self) -> str:
        parts = [f"scenario {self.scenario.name} on {HOST}:{self.port}"]
        for name in ("stderr.txt", "errors.log"):
            path = self.workdir / name
            if path.exists() and path.stat().st_size:
                parts.append(f"{name}:\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Terminate SIPp if it is still running (SIGTERM, then SIGKILL)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(3)


def start_sipp(
    scenario: str | Path,
    workdir: Path,
    keys: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    port: int | None = None,
) -> SippPeer:
    """Start a SIPp UAS playing `scenario` (a file name in peers/sipp/ or a path); `port`
    reuses a port (a peer that restarts), otherwise a free one is picked."""
    binary = shutil.which("sipp")
    if binary is None:
        pytest.fail("sipp is not installed (Debian package sip-tester); SIP tests need it")
    path = Path(scenario)
    if not path.is_absolute():
        path = SCENARIO_DIR / path
    if not path.is_file():
        pytest.fail(f"no SIPp scenario {path}")
    workdir.mkdir(parents=True, exist_ok=True)
    keys = dict(keys or {})
    last_error = ""
    fixed_port = port
    for _attempt in range(5):
        # SIPp also binds media_port + 2 (its video echo). Picked last, the media port lies
        # above the other two, so that port is neither; the start waits until SIPp holds it,
        # so later picks pass it over.
        port = fixed_port or free_port(HOST)
        control_port, media_port = free_port(HOST), free_port(HOST)
        args = [
            binary,
            "-sf",
            str(path),
            "-i",
            HOST,
            "-p",
            str(port),
            "-m",
            "1",
            "-mi",
            HOST,
            "-mp",
            str(media_port),
            "-ci",
            HOST,
            "-cp",
            str(control_port),
            "-nostdin",
            "-timeout",
            PEER_LIFETIME,
            "-trace_msg",
            "-message_file",
            str(workdir / "messages.log"),
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
        ]
        for key, value in keys.items():
            args += ["-key", key, value]
        args += list(extra_args)
        stderr = open(workdir / "stderr.txt", "wb")  # noqa: SIM115 (handed to the child)
        process = subprocess.Popen(
            args,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        peer = SippPeer(path, port, workdir, process, keys)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _udp_port_bound(port) and _udp_port_bound(media_port + 2):
                return peer
            time.sleep(0.02)
        peer.stop()
        last_error = f"exit code {process.returncode}: {peer.diagnostics()}"
        if process.returncode != _BIND_FAILED:
            break
    pytest.fail(f"SIPp did not start ({path.name}): {last_error}")


@pytest.fixture
def sipp_peer(tmp_path: Path) -> Iterator[Callable[..., SippPeer]]:
    """Factory: `sipp_peer("answer.xml", keys={"digit": "1"})` starts a SIPp UAS.

    Every peer started is stopped when the test ends. Its logs are in tmp_path/sipp-N/.
    """
    peers: list[SippPeer] = []

    def start(
        scenario: str | Path,
        keys: Mapping[str, str] | None = None,
        *extra_args: str,
        port: int | None = None,
    ) -> SippPeer:
        workdir = tmp_path / f"sipp-{len(peers)}"
        peer = start_sipp(scenario, workdir, keys, extra_args, port=port)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()


# A static SDP offer for tests (rtpengine provides the real one in the engine).
OFFER_SDP = (
    "v=0\r\n"
    "o=callnow 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 35000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
)


@pytest_asyncio.fixture
async def sip_stack() -> AsyncIterator[SipStack]:
    """A running SipStack on 127.0.0.1 and a free port, stopped after the test."""
    stack = SipStack("127.0.0.1", 0)
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()
