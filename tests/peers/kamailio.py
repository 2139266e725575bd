"""Fixtures that start Kamailio as a real SIP proxy for a test.

    def test_through_a_proxy(kamailio_proxy, sipp_peer):
        phone = sipp_peer("rr_answer.xml")
        proxy = kamailio_proxy(target=phone.address)      # forwards to the phone
        ... dial proxy.uri("1001") ...
        trace = proxy.trace(call_id)                       # what Kamailio saw and relayed
        assert [t.method for t in trace if t.kind == "req"] == ["INVITE", "ACK", "BYE"]

The configuration is peers/kamailio/proxy.cfg (a stateful, record-routing proxy); this module
only picks free ports and passes the targets as `-A` defines. Every instance runs in its own
working directory (pid file, runtime dir, log) under the test's tmp_path. Kamailio that is
missing or does not start FAILS the test with its log tail; it never skips.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port

CONFIG = Path(__file__).resolve().parents[2] / "peers" / "kamailio" / "proxy.cfg"
HOST = "127.0.0.1"
# Kamailio forks its workers in well under a second here; 10 s leaves room for a busy machine.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_LOG_TAIL_CHARS = 3000
_PR_SET_PDEATHSIG = 1

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One `CNTRACE|...` line of the proxy's log (see the header of proxy.cfg).

    kind "req": a request arrived (`peer` is its source, `detail` the request URI, `route`
    the top Route header); "fwd": a request was relayed (`peer` is the destination URI, empty
    when the request URI itself was the destination); "rpl": a reply arrived (`method` holds
    the status code, `cseq` the whole CSeq header).
    """

    kind: str
    method: str
    peer: str
    call_id: str
    cseq: str
    detail: str = ""
    route: str = ""


def parse_trace(text: str) -> list[TraceLine]:
    lines = []
    for raw in text.splitlines():
        _, marker, rest = raw.partition("CNTRACE|")
        if not marker:
            continue
        fields = rest.rstrip().split("|")
        kind = fields[0]
        if kind == "req" and len(fields) >= 7:
            lines.append(TraceLine("req", *fields[1:5], detail=fields[5], route=fields[6]))
        elif kind == "fwd" and len(fields) >= 5:
            lines.append(TraceLine("fwd", fields[1], fields[2], fields[3], fields[4]))
        elif kind == "rpl" and len(fields) >= 5:
            lines.append(TraceLine("rpl", fields[1], fields[2], fields[3], fields[4]))
    return lines


def _sip_uri(address: Address) -> str:
    return f"sip:{address[0]}:{address[1]}"


@dataclass
class KamailioProxy:
    """A running Kamailio. Created by `start_kamailio` or the `kamailio_proxy` fixture."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> Address:
        return (HOST, self.port)

    def uri(self, user: str) -> str:
        """A request URI naming the proxy itself; it forwards by the user part."""
        return f"sip:{user}@{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "kamailio.log"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def trace(self, call_id: str | None = None) -> list[TraceLine]:
        """Everything the proxy logged so far, optionally for one Call-ID only."""
        lines = parse_trace(self.log_text())
        return lines if call_id is None else [t for t in lines if t.call_id == call_id]

    def wait_for_trace(
        self, predicate: Callable[[TraceLine], bool], timeout: float = 5.0
    ) -> TraceLine:
        """Poll the log until a line matches (Kamailio logs from several worker processes)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.trace():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                pytest.fail(f"Kamailio never logged the awaited line; log:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self) -> str:
        return self.log_text()[-_LOG_TAIL_CHARS:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole process group (main process and its workers), then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT_S)
        # Workers of a main process that died on its own may linger; they share its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    # A crashed test run must not leave a proxy behind holding its port.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers_options(port: int, timeout: float) -> bool:
    """Send the keepalive OPTIONS proxy.cfg answers itself; True on its 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        me = sock.getsockname()[1]
        branch = f"z9hG4bK-probe{os.urandom(4).hex()}"
        probe = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{me};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}:{me}>;tag=probe\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: probe-{os.urandom(6).hex()}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(probe.encode(), (HOST, port))
            return sock.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:  # timeout, or ICMP port unreachable before the bind
            return False


def kamailio_command(
    config: Path,
    workdir: Path,
    port: int,
    defines: list[str],
    workers: int = 2,
) -> list[str]:
    binary = shutil.which("kamailio")
    if binary is None:
        pytest.fail("kamailio is not installed (Debian package kamailio); proxy tests need it")
    args = [
        binary,
        "-f",
        str(config),
        "-P",
        str(workdir / "kamailio.pid"),
        "-w",
        str(workdir),
        "-Y",
        str(workdir),  # runtime dir: the default /run/kamailio is shared and owned by others
        "-E",  # log to stderr (our log file)
        "-DD",  # stay in the foreground, so the fixture owns the main process
        "-T",  # no TCP workers
        "-S",  # no SCTP
        "-n",
        str(workers),
        "-m",
        "32",  # MB of shared memory; the default 64 is far more than a test needs
        "-M",
        "8",
        "-l",
        f"udp:{HOST}:{port}",
    ]
    for define in defines:
        args += ["-A", define]
    return args


def start_kamailio(
    workdir: Path,
    target: Address,
    *,
    target_e164: Address | None = None,
    auth: tuple[str, str] | None = None,
    registrar: bool = False,
    config: Path = CONFIG,
) -> KamailioProxy:
    """Start Kamailio on a free 127.0.0.1 port, forwarding to `target`.

    Request URIs naming the proxy go to `target`, or to `target_e164` when their user part
    starts with "+" (the trunk side). With `auth=(user, password)` INVITEs to the trunk side
    are challenged with 407. With `registrar`, REGISTERs are saved and other users are rung
    at their registered contact instead of `target`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    defines = [f'TARGET="{_sip_uri(target)}"']
    if target_e164 is not None:
        defines.append(f'TARGET_E164="{_sip_uri(target_e164)}"')
    if auth is not None:
        for value in auth:
            if any(ch in value for ch in "\"\\'\r\n"):
                raise ValueError("auth user/password must be plain text")
        defines += ["WITH_AUTH", f'AUTH_USER="{auth[0]}"', f'AUTH_PASSWORD="{auth[1]}"']
    if registrar:
        defines.append("WITH_REGISTRAR")
    last_error = ""
    for _attempt in range(5):
        port = free_port(HOST)
        log_path = workdir / "kamailio.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                kamailio_command(config, workdir, port, defines),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
                preexec_fn=_die_with_parent,
            )
        proxy = KamailioProxy(port, workdir, process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proxy.alive():
            if _answers_options(port, 0.2):
                return proxy
        proxy.stop()
        last_error = f"exit code {process.returncode}; log tail:\n{proxy.log_tail()}"
        if "Address already in use" not in last_error:
            break  # not a port race: trying again would fail the same way
    pytest.fail(f"Kamailio did not start ({config.name}): {last_error}", pytrace=False)


@pytest.fixture
def kamailio_proxy(tmp_path: Path) -> Iterator[Callable[..., KamailioProxy]]:
    """Factory: `kamailio_proxy(target=peer.address, target_e164=..., auth=(u, p))`.

    Every proxy started is stopped when the test ends; its log is tmp_path/kamailio-N/.
    """
    proxies: list[KamailioProxy] = []

    def start(
        target: Address,
        *,
        target_e164: Address | None = None,
        auth: tuple[str, str] | None = None,
        registrar: bool = False,
    ) -> KamailioProxy:
        proxy = start_kamailio(
            tmp_path / f"kamailio-{len(proxies)}",
            target,
            target_e164=target_e164,
            auth=auth,
            registrar=registrar,
        )
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
