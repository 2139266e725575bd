"""Shared helpers for the telephony benchmarks: the machine, process CPU/RSS, RTP port blocks,
SIPp phones and an in-memory call recorder.

Figures mean little without the machine they came from, and this machine is shared (other
engineers run tests on the same two cores), so the load average at the start is printed too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from callnow.domain.calls import (
    LegDialling,
    LegRecorded,
    LegRole,
    StateChanged,
    StoreWrite,
)
from callnow.domain.request_state import RequestState

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sipp"

# The same lock files as tests/peers/rtpengine.py: a benchmark and other people's test runs
# on this machine never hand rtpengine the same RTP ports.
RTP_BLOCK_SIZE = 200
RTP_AREA = (20_000, 32_000)
_LOCK_DIR = Path(tempfile.gettempdir()) / "callnow-test-rtp-ports"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "missing"
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def python_speed(steps: int = 3_000_000) -> float:
    """Millions of `total += i` loop steps per second, timed now, best of three.

    These machines' speed drifts by 2-4x from hour to hour (other tenants share the host). This
    figure, printed with every run, catches a slow clock or a starved core. It misses slowness
    in caches and memory: on 2026-11-26 it read normal while the service needed 2.5x its usual
    CPU per request. Compare runs by alternating them in one window, not by this figure alone.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - started)
    return steps / best / 1e6


def print_machine(title: str) -> None:
    """The header every benchmark prints: what ran where."""
    from importlib.metadata import version

    load1, load5, _ = os.getloadavg()
    print(f"== {title}")
    print(f"machine : {platform.platform()}")
    print(f"cpu     : {cpu_model()} x {os.cpu_count()} (load average {load1:.2f} / {load5:.2f})")
    print(f"python  : {platform.python_implementation()} {platform.python_version()}")
    print(f"speed   : {python_speed():.1f} M loop steps/s on one core, now (see python_speed)")
    print(f"sippy   : {version('sippy')}")
    print(f"rtpengine: {_version(['rtpengine', '--version'])}")
    print(f"sipp    : {_version(['sipp', '-v'])[:60]}")
    print()


@dataclass(frozen=True, slots=True)
class ProcSample:
    """CPU seconds (user + system) and resident memory of one process at one moment."""

    at: float
    cpu_s: float
    rss_bytes: int


def sample(pid: int | None = None) -> ProcSample:
    """Read /proc/<pid>/stat and statm (pid None: this process)."""
    who = "self" if pid is None else str(pid)
    stat = Path(f"/proc/{who}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime
    rss = int(Path(f"/proc/{who}/statm").read_text().split()[1]) * _PAGE
    return ProcSample(time.monotonic(), cpu, rss)


def thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each live Python thread of this process, by thread name
    (threads of the same name are summed): shows where an engine's CPU goes, e.g. the asyncio
    loop (MainThread) versus sippy's event loop and its UDP reader/writer threads."""
    import threading

    used: dict[str, float] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # Thread-12 and Thread-13 (sippy's UDP reader and writer) are one row.
        name = re.sub(r"^(Thread|asyncio)[-_]\d+", r"\1", thread.name)
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return used


def cpu_percent(first: ProcSample, last: ProcSample) -> float:
    """Average CPU use between two samples, in percent of one core."""
    wall = last.at - first.at
    return 100.0 * (last.cpu_s - first.cpu_s) / wall if wall > 0 else 0.0


def mib(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)


# Benchmarks need thousands of ports in one range; the tests' area is scattered with their
# 200-port blocks, so look below it first (same lock files, so nothing is ever shared).
BENCH_RTP_AREAS = ((10_000, 20_000), RTP_AREA)


@contextlib.contextmanager
def reserved_rtp_ports(blocks: int) -> Iterator[tuple[int, int]]:
    """Lock `blocks` consecutive free 200-port blocks; yields (port_min, port_max).

    Raises RuntimeError when no such run of free blocks exists (tests are holding them).
    """
    _LOCK_DIR.mkdir(exist_ok=True)
    for low, high in BENCH_RTP_AREAS:
        for first in range(low, high - blocks * RTP_BLOCK_SIZE + 1, RTP_BLOCK_SIZE):
            held: list[int] = []
            try:
                for i in range(blocks):
                    start = first + i * RTP_BLOCK_SIZE
                    fd = os.open(_LOCK_DIR / f"{start}.lock", os.O_CREAT | os.O_RDWR, 0o666)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        os.close(fd)
                        break
                    held.append(fd)
                else:
                    yield first, first + blocks * RTP_BLOCK_SIZE - 1
                    return
            finally:
                for fd in held:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
    raise RuntimeError(f"no {blocks} consecutive free RTP port blocks in {BENCH_RTP_AREAS}")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# -- SIPp phones -------------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Sipp:
    name: str
    port: int
    media_port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def error_kinds(self) -> Counter[str]:
        """SIPp's logged events (its -trace_err file), by kind, call-ids and times removed."""
        path = self.workdir / "errors.log"
        if not path.exists():
            return Counter()
        kinds: Counter[str] = Counter()
        for line in path.read_text(errors="replace").splitlines():
            line = line.lstrip("'")
            if not re.match(r"\d{4}-\d\d-\d\d\t", line):
                continue  # the message dump that follows an event
            text = line.split(": ", 1)[-1]
            text = re.sub(r"[0-9a-f]{12,}\S*", "X", text)
            kinds[re.sub(r"'(\S+) .*", r"'\1 ...'", text)[:100]] += 1
        return kinds

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_sipp(
    scenario: str, workdir: Path, keys: dict[str, str], extra: list[str] | None = None
) -> Sipp:
    """A SIPp UAS answering any number of calls (no -m), quiet, errors to a file."""
    binary = shutil.which("sipp")
    if binary is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester)")
    workdir.mkdir(parents=True, exist_ok=True)
    port, media_port = free_udp_port(), free_udp_port()
    args = [
        binary,
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        HOST,
        "-p",
        str(port),
        "-mi",
        HOST,
        "-mp",
        str(media_port),
        "-cp",
        str(free_udp_port()),
        "-nostdin",
        "-timeout",
        "900s",  # a forgotten SIPp never outlives the benchmark for long
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        # Defaults of 1000 make SIPp share its loop between reading and scheduling badly
        # when a thousand calls are in flight.
        "-max_recv_loops",
        "10000",
        "-max_sched_loops",
        "10000",
        *(extra or []),
    ]
    for key, value in keys.items():
        args += ["-key", key, value]
    process = subprocess.Popen(
        args,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    if process.poll() is not None:
        raise SystemExit(f"SIPp {scenario} did not start (exit {process.returncode})")
    return Sipp(scenario, port, media_port, process, workdir)


# -- the engine's recorder (in memory) ---------------------------------------------------------


@dataclass
class MemoryRecorder:
    """The store's stand-in: notes the owner leg's write-ahead time and each request's state."""

    owner_dialling_at: dict[str, datetime] = field(default_factory=dict)
    states: dict[str, RequestState] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        for write in writes:
            match write:
                case LegDialling(role=LegRole.OWNER, at=at):
                    self.owner_dialling_at[request_ref] = at
                case LegRecorded(record=record):
                    self.records[f"{record.role}:{record.disposition}"] += 1
                case StateChanged(state=state):
                    self.states[request_ref] = state
