"""Request latency: from the public form's 303 to the owner's INVITE on the wire.

    .venv/bin/python bench/request_latency_bench.py            # SQLite and PostgreSQL, ~4 min
    .venv/bin/python bench/request_latency_bench.py --quick    # a short run of both
    .venv/bin/python bench/request_latency_bench.py --db sqlite --rates 10,50
    .venv/bin/python bench/request_latency_bench.py --db postgresql --engine-process shared
    .venv/bin/python bench/request_latency_bench.py --db postgresql --split   # web | engine

What runs (all on 127.0.0.1): `callnow serve` as a subprocess, as shipped, on a temporary data
directory with SQLite, or on a throwaway PostgreSQL database created for the run and dropped
after it. On both the engine runs in a child process that serve starts (woken through a pipe
on SQLite, by NOTIFY on PostgreSQL; `--engine-process shared` keeps it in serve's process; the
engine spawns its own rtpengine). The owner's extension
is `bench/_owner_phone.py` in this process: it notes the kernel's receive time of each INVITE
and answers 486 Busy Here at once, so every callback ends after one SIP round trip. With
`--split`, `callnow serve` runs the web alone and a separate `callnow engine` command runs
beside it, as a provider with engines on other hosts would run them.

The load: each request posts the `john_doe` form with its own caller number, which comes back
in the INVITE's From, so each INVITE is matched to its request. Steps offer rising rates
(open loop: requests are sent on a fixed schedule by a pool of keep-alive clients, each of which
fetched the page's form token once), each bounded in time and count; a last step posts as fast as
a few clients can (closed loop) for the public endpoint's throughput with the engine running.

Latency = INVITE arrival (kernel time stamp, CLOCK_REALTIME) - the client's time.time() once the
303 was read. Client-side delay in reading the response shortens it, so under heavy client load
the figure is a slight underestimate; "send lag" shows how far the client fell behind schedule.

After the run, the rows the service wrote are read to split the latency into stages (server
clock, same machine): request row inserted -> 303 at the client -> owner leg's write-ahead row
(commit, wake-up, the claim that writes it) -> INVITE on the wire (callback start, rtpengine
offer, SIP stack).

Requests get CLIENT_TIMEOUT_S to be answered, and a step starts only once the page answers again:
on SQLite the service can freeze for its 30 s busy timeout when form posts overlap (the public POST
writes on the event loop and commits only after the response); if it stays frozen for
STALL_LIMIT_S, that database's remaining steps are skipped rather than timed out one by one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import (
    HOST,
    cpu_percent,
    free_udp_port,
    percentile,
    print_machine,
    reserved_rtp_ports,
    sample,
)
from bench._owner_phone import OwnerPhone

ROOT = Path(__file__).resolve().parent.parent
CALLNOW = ROOT / ".venv" / "bin" / "callnow"
PROFILE = "john_doe"  # the demo page: image check off, so no CAPTCHA is asked for
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Limits far above anything a benchmark sends: the rate limiter must not be what is measured.
UNLIMITED = "1000000/minute"
GOAL_RATE, GOAL_P99_MS = 50.0, 20.0


def free_tcp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- the service -------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database for one run, dropped afterwards (even if the run failed)."""
    import psycopg

    name = f"callnow_bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    database_url: str
    log_path: Path
    # --split: `callnow engine` in a process of its own; `callnow serve` runs the web only.
    engine_process: subprocess.Popen[bytes] | None = None

    def engine_pid(self) -> int | None:
        """The engine's process if it has one: --split's, or serve's engine child."""
        if self.engine_process is not None:
            return self.engine_process.pid
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid), "-f", "callnow engine"],
            capture_output=True,
            text=True,
        ).stdout.split()
        return int(found[0]) if found else None

    def stop(self) -> None:
        for process in (self.process, self.engine_process):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


@contextlib.contextmanager
def running_service(
    database: str,
    owner_port: int,
    workdir: Path,
    *,
    split: bool = False,
    engine_process: str = "auto",
    with_engine: bool = True,
    engine_env: dict[str, str] | None = None,
) -> Iterator[Service]:
    """`callnow serve` with free ports, a temp data dir and every rate limit out of the way;
    without `with_engine`, no engine runs anywhere and requests stay queued. `engine_env`
    replaces the engine's per-owner limits below (environment names and values)."""
    with contextlib.ExitStack() as stack:
        if database == "postgresql":
            database_url = stack.enter_context(postgres_database())
        else:
            database_url = f"sqlite:///{workdir / 'callnow.sqlite3'}"
        rtp_min, rtp_max = stack.enter_context(reserved_rtp_ports(2))
        web_port = free_tcp_port()
        env = {
            **os.environ,
            # The service runs this tree's code, not the one the venv was installed from: a
            # bench copied into another checkout measures that checkout.
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "CALLNOW_DATA_DIR": str(workdir),
            "CALLNOW_DATABASE_URL": database_url,
            "CALLNOW_DEMO_DATA": "true",
            "CALLNOW_LOG_LEVEL": "info",  # as shipped: the log lines are part of the cost
            "CALLNOW_WEB__PORT": str(web_port),
            "CALLNOW_WEB__PUBLIC_BASE_URL": f"http://{HOST}:{web_port}",
            "CALLNOW_SIP__LISTEN_PORT": str(free_udp_port()),
            "CALLNOW_SIP__OWNER_URI_TEMPLATE": f"sip:{{internal}}@{HOST}:{owner_port}",
            # Never dialled (the owner is always busy), but must not point at anyone's peer.
            "CALLNOW_TRUNK__URI_TEMPLATE": f"sip:{{e164}}@{HOST}:{free_udp_port()}",
            "CALLNOW_RTPENGINE__MODE": "spawn",
            "CALLNOW_RTPENGINE__NG_PORT": str(free_udp_port()),
            "CALLNOW_RTPENGINE__DTMF_LOG_PORT": str(free_udp_port()),
            "CALLNOW_RTPENGINE__PORT_MIN": str(rtp_min),
            "CALLNOW_RTPENGINE__PORT_MAX": str(rtp_max),
            # One owner takes every benchmark call: lift the per-owner callback limits, and ring
            # the owner for every request although their phone answered busy just before.
            "CALLNOW_ENGINE__OWNER_BUSY_HOLD_S": "0",
            "CALLNOW_ENGINE__MAX_CALLS_PER_EXTENSION": "10000",
            "CALLNOW_ENGINE__MAX_CALLS_PER_TENANT": "10000",
            "CALLNOW_ENGINE__MAX_CONCURRENT_CALLS": "10000",
            "CALLNOW_ENGINE__PROCESS": engine_process,
            **(engine_env or {}),
        }
        for limit in (
            "PER_SOURCE",
            "PER_NETWORK",
            "PER_PROFILE",
            "PER_NUMBER",
            "PER_BLOCK",
            "PLATFORM",
            "CAPTCHA_AUTO_ON",
            "SPIKE_CAPTCHA",
        ):
            env[f"CALLNOW_ABUSE__{limit}"] = UNLIMITED
        env.pop("CALLNOW_CONFIG", None)
        log_path = workdir / "serve.log"
        log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [str(CALLNOW), "serve"],
            cwd=workdir,
            env={**env, "CALLNOW_ENGINE__ENABLED": "false"} if split or not with_engine else env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C reaches it only through stop()
        )
        service = Service(process, f"http://{HOST}:{web_port}", database_url, log_path)
        stack.callback(service.stop)
        _wait_ready(service)  # the web migrated the database; the engine may start on it
        if split:
            engine_log_path = workdir / "engine.log"
            engine_log = stack.enter_context(engine_log_path.open("wb"))
            service.engine_process = subprocess.Popen(
                [str(CALLNOW), "engine"],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=engine_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            _wait_for_line(service.engine_process, engine_log_path, " running")
        yield service


def _wait_for_line(process: subprocess.Popen[bytes], log_path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"callnow engine exited ({process.returncode}):\n{tail}")
        if text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit(f"callnow engine not ready after 60 s; see {log_path}")


def _wait_ready(service: Service, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            tail = service.log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"callnow serve exited ({service.process.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            page = httpx.get(f"{service.base_url}/callnow/{PROFILE}", timeout=2, trust_env=False)
            if page.status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"callnow serve not ready after {timeout_s:.0f} s; see {service.log_path}")


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Sent:
    digits: str  # the caller number as E.164 digits, as it appears in the INVITE's From
    due: float  # when the schedule wanted it sent (epoch s; closed loop: = sent)
    sent: float
    answered: float = 0.0
    status: int = 0  # HTTP status; 0 = transport error


@dataclass
class Step:
    name: str
    rate: float | None  # offered requests/s; None = closed loop, as fast as the clients go
    duration_s: float
    clients: int
    results: list[Sent] = field(default_factory=list)
    not_sent: int = 0
    wall_s: float = 0.0
    server_cpu_pct: float = 0.0
    engine_cpu_pct: float = float("nan")  # an engine in its own process only


class Numbers:
    """Distinct, valid Sydney numbers (02 9xxx xxxx), one per request of a run."""

    def __init__(self) -> None:
        self._next = 0

    def take(self) -> tuple[str, str]:
        n = self._next
        self._next += 1
        return f"029{n:07d}", f"6129{n:07d}"


# A request the service has not answered by then counts as failed. Short, because a stalled
# service (see the SQLite notes in the report) must not stretch a step to minutes.
CLIENT_TIMEOUT_S = 5.0


async def _client(base_url: str) -> tuple[httpx.AsyncClient, str] | None:
    """One keep-alive connection and the form token its page handed out; None if the page did
    not answer (a stalled service), so a step runs with the clients it could get."""
    client = httpx.AsyncClient(
        base_url=base_url,
        follow_redirects=False,
        timeout=CLIENT_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,  # everything is on 127.0.0.1: no proxy from the environment
    )
    try:
        page = await client.get(f"/callnow/{PROFILE}")
    except httpx.HTTPError:
        await client.aclose()
        return None
    match = re.search(r'name="form_token" value="([^"]+)"', page.text)
    if page.status_code != 200 or match is None:
        await client.aclose()
        return None
    return client, match.group(1)


async def _post(client: httpx.AsyncClient, token: str, number: str, record: Sent) -> None:
    try:
        response = await client.post(
            f"/callnow/{PROFILE}",
            data={"form_token": token, "name": "Bench Visitor", "number": number},
        )
        record.answered = time.time()  # first thing after the response: the latency's start
        record.status = response.status_code
    except httpx.HTTPError:
        record.answered = time.time()


async def run_step(step: Step, base_url: str, numbers: Numbers, max_requests: int) -> None:
    got = await asyncio.gather(*(_client(base_url) for _ in range(step.clients)))
    clients = [c for c in got if c is not None]
    started = time.time()
    if not clients:
        step.not_sent = round((step.rate or 0) * step.duration_s)
        return
    stop_at = started + step.duration_s
    try:
        if step.rate is None:

            async def closed(client: httpx.AsyncClient, token: str) -> None:
                while time.time() < stop_at and len(step.results) < max_requests:
                    number, digits = numbers.take()
                    now = time.time()
                    record = Sent(digits, now, now)
                    step.results.append(record)
                    await _post(client, token, number, record)

            await asyncio.gather(*(closed(c, t) for c, t in clients))
        else:
            await _open_loop(step, clients, numbers, started, max_requests)
    finally:
        step.wall_s = time.time() - started
        for client, _ in clients:
            await client.aclose()


async def _open_loop(
    step: Step,
    clients: list[tuple[httpx.AsyncClient, str]],
    numbers: Numbers,
    started: float,
    max_requests: int,
) -> None:
    """Send on a fixed schedule; a request waits for a free client (its lag is recorded), and
    whatever has not gone out a few seconds after the step's end is counted as not sent."""
    assert step.rate is not None
    count = min(max_requests, round(step.rate * step.duration_s))
    due_queue: asyncio.Queue[float | None] = asyncio.Queue()
    give_up_at = started + step.duration_s + 5.0

    async def worker(client: httpx.AsyncClient, token: str) -> None:
        while (due := await due_queue.get()) is not None:
            if time.time() > give_up_at:
                step.not_sent += 1
                continue
            number, digits = numbers.take()
            record = Sent(digits, due, time.time())
            step.results.append(record)
            await _post(client, token, number, record)

    workers = [asyncio.create_task(worker(c, t)) for c, t in clients]
    for i in range(count):
        due = started + i / step.rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due_queue.put_nowait(due)
    for _ in workers:
        due_queue.put_nowait(None)
    await asyncio.gather(*workers)


# How long a stalled service may take to answer again before the rest of its steps is skipped.
STALL_LIMIT_S = 40.0


def wait_responsive(base_url: str, timeout_s: float) -> float:
    """Wait until the page answers again; returns how long that took (inf: not within
    timeout_s). A step must not start while the service is still stalled by the one before."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(
                f"{base_url}/callnow/{PROFILE}", timeout=timeout_s, trust_env=False
            )
            if response.status_code == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    return float("inf")


def wait_for_invites(phone: OwnerPhone, step: Step, timeout_s: float) -> None:
    """Until every accepted request's INVITE arrived (or the timeout), so the next step does
    not start on this one's backlog; then a short quiet time for the engine to end the calls."""
    wanted = {r.digits for r in step.results if r.status == 303}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not wanted <= phone.snapshot().keys():
        time.sleep(0.1)
    time.sleep(1.0)


# -- figures -----------------------------------------------------------------------------------


@dataclass
class Row:
    database: str
    step: str
    offered: str
    sent: int
    accepted: int
    failed: int
    not_sent: int
    accepted_per_s: float
    http_p50: float
    http_p99: float
    lag_p99: float
    latencies: list[float]  # ms, HTTP 303 -> INVITE on the wire
    reader_delay_max: float  # ms, kernel time stamp -> the phone thread read it
    missing: int  # accepted but no INVITE seen
    dialled_per_s: float  # INVITEs per second while this step's requests were dialled
    # INVITEs per second after the last 303 of the step, when the web is idle: the engine's
    # own pace working off a backlog (NaN when there was no backlog to speak of).
    drain_per_s: float
    server_cpu_pct: float
    engine_cpu_pct: float


def summarise(database: str, step: Step, phone: OwnerPhone) -> Row:
    invites = phone.snapshot()
    accepted = [r for r in step.results if r.status == 303]
    latencies = [
        (invites[r.digits].wire_at - r.answered) * 1000 for r in accepted if r.digits in invites
    ]
    reader = [
        (invites[r.digits].read_at - invites[r.digits].wire_at) * 1000
        for r in accepted
        if r.digits in invites
    ]
    wires = sorted(invites[r.digits].wire_at for r in accepted if r.digits in invites)
    dialled_per_s = 0.0
    if len(wires) > 1:
        # From the first request sent to the last INVITE: the engine's pace, backlog included.
        dialled_per_s = len(wires) / (wires[-1] - min(r.sent for r in step.results))
    last_answer = max((r.answered for r in accepted), default=0.0)
    after = [w for w in wires if w > last_answer]
    drain_per_s = float("nan")
    if len(after) >= 20:
        drain_per_s = len(after) / (after[-1] - last_answer)
    # Throughput over the time requests were being sent and answered (or timed out), so a
    # step where most requests failed is not credited with the pace of its few successes.
    if step.results:
        span = max(r.answered for r in step.results) - min(r.sent for r in step.results)
    else:
        span = step.wall_s
    return Row(
        database=database,
        step=step.name,
        offered="max" if step.rate is None else f"{step.rate:g}",
        sent=len(step.results),
        accepted=len(accepted),
        failed=len(step.results) - len(accepted),
        not_sent=step.not_sent,
        accepted_per_s=len(accepted) / span if span > 0 else 0.0,
        http_p50=percentile([(r.answered - r.sent) * 1000 for r in step.results], 50),
        http_p99=percentile([(r.answered - r.sent) * 1000 for r in step.results], 99),
        lag_p99=percentile([(r.sent - r.due) * 1000 for r in step.results], 99),
        latencies=latencies,
        reader_delay_max=max(reader, default=float("nan")),
        missing=len(accepted) - len(latencies),
        dialled_per_s=dialled_per_s,
        drain_per_s=drain_per_s,
        server_cpu_pct=step.server_cpu_pct,
        engine_cpu_pct=step.engine_cpu_pct,
    )


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'db':<10} {'offered/s':>9} {'sent':>5} {'303':>5} {'fail':>4} {'acc/s':>6} "
        f"{'http p50':>8} {'p99':>6} {'lag p99':>7} │ {'→INVITE p50':>11} {'p99':>7} "
        f"{'max':>7} {'miss':>4} {'dial/s':>6} │ {'srv CPU':>7}"
    )
    print(header)
    print("─" * len(header))
    for r in rows:
        print(
            f"{r.database:<10} {r.offered:>9} {r.sent:>5} {r.accepted:>5} "
            f"{r.failed + r.not_sent:>4} {r.accepted_per_s:>6.1f} {r.http_p50:>8.1f} "
            f"{r.http_p99:>6.1f} {r.lag_p99:>7.1f} │ {percentile(r.latencies, 50):>11.1f} "
            f"{percentile(r.latencies, 99):>7.1f} {max(r.latencies, default=float('nan')):>7.1f} "
            f"{r.missing:>4} {r.dialled_per_s:>6.1f} │ {r.server_cpu_pct:>6.0f}%"
            + ("" if r.engine_cpu_pct != r.engine_cpu_pct else f" {r.engine_cpu_pct:>6.0f}%")
        )
    print(
        "times in ms; '→INVITE' = 303 read by the client → owner's INVITE at the socket "
        "(kernel time stamp); acc/s = 303s per second of the step; lag = how late the client "
        "sent against the schedule; dial/s = INVITEs per second from the step's start to its last "
        "INVITE; miss = accepted, no INVITE within the drain time; srv CPU = callnow serve, "
        "% of one core, then the engine process's where it has its own"
    )


def stage_breakdown(database: str, database_url: str, steps: list[Step], phone: OwnerPhone) -> None:
    """Split each request's latency with the times the service itself stored."""
    from sqlalchemy import create_engine, select

    from callnow.store.models import CallLeg, CallRequest

    engine = create_engine(database_url)
    stamps: dict[str, tuple[float, float | None]] = {}
    try:
        with engine.connect() as connection:
            requests = connection.execute(
                select(CallRequest.id, CallRequest.number_e164, CallRequest.created_at)
            ).all()
            legs = dict(
                connection.execute(
                    select(CallLeg.request_id, CallLeg.started_at).where(CallLeg.role == "owner")
                ).all()
            )
    finally:
        engine.dispose()

    def epoch(value: datetime | None) -> float | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()

    for request_id, e164, created in requests:
        created_at = epoch(created)
        assert created_at is not None
        stamps[e164.lstrip("+")] = (
            created_at,
            epoch(legs.get(request_id)),
        )
    invites = phone.snapshot()
    print(f"\n{database}: where the time goes, median / p99 in ms (server clock = client clock)")
    print(
        f"  {'step':>9} │ {'row→303 read':>13} │ {'303→owner leg row':>17} │ {'leg row→INVITE':>14}"
    )
    for step in steps:
        if not step.results:
            continue
        parts: list[list[float]] = [[], [], []]
        for r in step.results:
            got = stamps.get(r.digits)
            invite = invites.get(r.digits)
            if r.status != 303 or got is None or invite is None:
                continue
            created_at, leg_at = got
            if leg_at is None:
                continue
            parts[0].append((r.answered - created_at) * 1000)
            parts[1].append((leg_at - r.answered) * 1000)
            parts[2].append((invite.wire_at - leg_at) * 1000)
        cells = [f"{percentile(p, 50):6.1f} / {percentile(p, 99):6.1f}" for p in parts]
        offered = "max" if step.rate is None else f"{step.rate:g}/s"
        print(f"  {offered:>9} │ {cells[0]:>13} │ {cells[1]:>17} │ {cells[2]:>14}")


# -- main --------------------------------------------------------------------------------------


def run_database(database: str, args: argparse.Namespace, rows: list[Row]) -> None:
    phone = OwnerPhone(HOST)
    phone.start()
    numbers = Numbers()
    steps = [
        Step(f"{rate:g}/s", rate, args.step_s, clients=args.clients) for rate in args.rates
    ] + [Step("max", None, args.step_s, clients=args.max_clients)]
    workdir = Path(tempfile.mkdtemp(prefix=f"callnow-bench-{database}-"))
    try:
        with running_service(
            database, phone.port, workdir, split=args.split, engine_process=args.engine_process
        ) as service:
            engine_pid = service.engine_pid()
            print(
                f"{database}: callnow serve pid {service.process.pid} ready, {service.base_url}; "
                + (f"engine pid {engine_pid}" if engine_pid else "engine in the same process")
            )
            # A first request warms up every code path (imports, prompt cache, connections).
            warm = Step("warm-up", 5.0, 1.0, clients=1)
            asyncio.run(run_step(warm, service.base_url, numbers, 5))
            wait_for_invites(phone, warm, 5.0)
            for step in steps:
                stalled = wait_responsive(service.base_url, STALL_LIMIT_S)
                if stalled == float("inf"):
                    # Still frozen: further steps would only measure the freeze again.
                    print(f"  service not answering for {STALL_LIMIT_S:.0f} s: steps skipped")
                    break
                if stalled > 1.0:
                    print(f"  (the service answered again only after {stalled:.1f} s)")
                pids = [service.process.pid] + ([engine_pid] if engine_pid else [])
                before = [sample(pid) for pid in pids]
                asyncio.run(run_step(step, service.base_url, numbers, args.max_requests))
                after = [sample(pid) for pid in pids]
                step.server_cpu_pct = cpu_percent(before[0], after[0])
                if len(pids) > 1:
                    step.engine_cpu_pct = cpu_percent(before[1], after[1])
                wait_for_invites(phone, step, args.drain_s)
                row = summarise(database, step, phone)
                rows.append(row)
                print(
                    f"  {step.name:>6}: {row.accepted}/{row.sent} accepted, "
                    f"{row.accepted_per_s:.1f}/s, INVITE p50 "
                    f"{percentile(row.latencies, 50):.1f} ms p99 "
                    f"{percentile(row.latencies, 99):.1f} ms, {row.missing} without INVITE; "
                    f"dialled {row.dialled_per_s:.1f}/s, {row.drain_per_s:.1f}/s once the "
                    "web was idle",
                    flush=True,
                )
            if phone.retransmissions or phone.other_requests:
                print(
                    f"  owner phone: {phone.retransmissions} INVITE retransmissions, "
                    f"{phone.other_requests} other requests"
                )
            reader = max((r.reader_delay_max for r in rows if r.database == database), default=0)
            print(f"  owner phone: at worst {reader:.1f} ms from kernel time stamp to our read")
            errors = sum(
                1
                for line in service.log_path.read_text(errors="replace").splitlines()
                if re.search(r"\b(ERROR|Traceback)\b", line)
            )
            if errors:
                print(f"  callnow serve logged {errors} ERROR/Traceback lines; see {workdir}")
            database_url = service.database_url
            service.stop()
            stage_breakdown(database, database_url, steps, phone)
    finally:
        phone.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short steps, two rates")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rates", help="offered requests/s per step, e.g. 10,25,50,100")
    parser.add_argument("--step-s", type=float, help="seconds per step")
    parser.add_argument("--clients", type=int, default=16, help="open-loop client connections")
    parser.add_argument("--max-clients", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--max-requests", type=int, default=2000, help="cap per step")
    parser.add_argument(
        "--drain-s", type=float, default=15.0, help="wait this long for a step's INVITEs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dir and serve.log")
    parser.add_argument(
        "--engine-process",
        choices=["auto", "shared", "own"],
        default="auto",
        help="serve's engine.process: auto (own on PostgreSQL), shared or own",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run `callnow engine` as a process of its own beside a web-only `callnow serve`",
    )
    args = parser.parse_args()
    if args.rates:
        args.rates = [float(r) for r in args.rates.split(",")]
    else:
        args.rates = [10.0, 50.0] if args.quick else [10.0, 25.0, 50.0, 100.0]
    if args.step_s is None:
        args.step_s = 3.0 if args.quick else 8.0
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]

    print_machine("request latency: public form 303 → owner's INVITE, callnow serve + engine")
    # The service runs from this working tree, which other engineers change while we run.
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"callnow : {revision or 'unknown revision'} (working tree of {ROOT})\n")
    rows: list[Row] = []
    for database in databases:
        run_database(database, args, rows)
    print_table(rows)
    goal = [r for r in rows if r.offered == f"{GOAL_RATE:g}"]
    for r in goal:
        p99 = percentile(r.latencies, 99)
        verdict = "met" if p99 < GOAL_P99_MS and r.missing == 0 and r.failed == 0 else "NOT met"
        print(f"goal p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE:g}/s on {r.database}: {verdict}")


if __name__ == "__main__":
    main()
