"""What CallNow's public form post costs next to the least a web app could do with it.

    .venv/bin/python bench/intake_ratio.py [--clients 8] [--seconds 10] [--rounds 1] [--engine]
        [--what-if]

Side by side in one run (so both see the same machine), each served by uvicorn on 127.0.0.1
in this process, each on a fresh SQLite file:

- CallNow: `create_app` as `callnow serve` builds it, engine off, the demo page (no image
  check), every abuse limit lifted, a new number on every post, so each post does the whole
  intake (validation, checks, the request row, its history, the 303);
- bare: Starlette parsing the same form fields and inserting one row.

The clients run in a separate process (closed loop: each posts again as soon as it has its
answer), so they do not share the server's interpreter lock. Prints requests/s of each and
CallNow's share of the bare figure; with `--rounds`, the pair is measured that many times,
alternately, each round on fresh files, and the median ratio is printed too (this machine's
speed drifts between minutes, so one pair is a rough figure).

With `--engine`, each round also measures `callnow serve` (a subprocess on SQLite, its engine
running in a child process with its rtpengine) while the engine dials the page's owner, whose
phone answers 486 Busy Here at once (bench/_owner_phone.py), twice:

- `+engine`: the engine as shipped. It rings one owner once at a time, and after a busy it
  lets that owner's queue wait (`engine.owner_busy_hold_s`): a flood of posts to one page rings
  the owner's phone a few times, and the posts wait queued;
- `+dialling`: every accepted post dialled at once (the engine's per-owner limits lifted, no
  hold): the engine's own cost per callback competes with the web for the machine.

With `--what-if`, each round also measures CallNow with its limit counters in process memory
(`memory://`: a count that costs nothing in the database, forgotten on restart and not shared
between processes). Not a way to run CallNow on a network: a figure of what the database's
counters cost a post.

Their server CPU is serve's and its engine child's together (rtpengine's is left out); the
owner's phone counts the INVITEs it received.
"ms CPU/post" is the server's CPU per accepted post: where
the CPU sets the rate (the client process can be the limit for the bare app), the ratio of
those is the fairer comparison, and is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import cpu_percent, print_machine, sample
from bench._owner_phone import OwnerPhone
from bench._web_apps import bare_app, callnow_app, post_closed_loop
from bench.request_latency_bench import HOST, running_service
from callnow.config import EngineSettings
from tests.support.http_server import served

# The engine's limits and busy hold as shipped (the settings' defaults); `running_service`
# lifts them all, so that every post is dialled at once.
AS_SHIPPED = {
    f"CALLNOW_ENGINE__{name.upper()}": str(EngineSettings.model_fields[name].default)
    for name in (
        "max_calls_per_extension",
        "max_calls_per_tenant",
        "max_concurrent_calls",
        "owner_busy_hold_s",
    )
}
EVERY_POST_DIALLED: dict[str, str] = {}


@dataclass(frozen=True)
class Measured:
    posts_per_s: float  # accepted (303)
    statuses: dict[int, int]
    server_cpu_pct: float  # the server's processes (uvicorn and the app; the engine), of one core
    client_cpu_pct: float
    invites: int | None = None  # INVITEs the owner's phone received, with an engine

    def line(self, label: str) -> str:
        rung = f"  owner rung {self.invites}" if self.invites is not None else ""
        return (
            f"{label:<9} {self.posts_per_s:>13.1f} {self.server_cpu_pct:>10.0f} % "
            f"{self.cpu_ms_per_post:>13.2f} "
            f"{self.client_cpu_pct:>10.0f} %  {self.statuses}{rung}"
        )

    @property
    def cpu_ms_per_post(self) -> float:
        return 10 * self.server_cpu_pct / max(self.posts_per_s, 1e-9)


def _measure_at(
    base: str, pid: int | None, clients: int, seconds: float, engine_pid: int | None = None
) -> Measured:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        server_before = sample(pid)
        engine_before = sample(engine_pid) if engine_pid is not None else None
        posting = pool.submit(post_closed_loop, base, clients, seconds)
        statuses, started, ended, client_cpu_s = posting.result()
        server = cpu_percent(server_before, sample(pid))
        if engine_before is not None:
            server += cpu_percent(engine_before, sample(engine_pid))
    wall = ended - started
    return Measured(statuses.get(303, 0) / wall, statuses, server, 100 * client_cpu_s / wall)


def measure(app: Any, clients: int, seconds: float) -> Measured:
    with served(app) as base:
        return _measure_at(base, None, clients, seconds)


def measure_with_engine(
    workdir: Path, clients: int, seconds: float, engine_env: dict[str, str]
) -> Measured:
    """`callnow serve`, its engine dialling an owner who is always busy."""
    phone = OwnerPhone(HOST)
    phone.start()
    try:
        with running_service("sqlite", phone.port, workdir, engine_env=engine_env) as service:
            pid, engine_pid = service.process.pid, service.engine_pid()
            _measure_at(service.base_url, pid, 1, 1.0, engine_pid)  # warm-up
            before = len(phone.invites)
            measured = _measure_at(service.base_url, pid, clients, seconds, engine_pid)
            return replace(measured, invites=len(phone.invites) - before)
    finally:
        phone.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--engine", action="store_true", help="also `callnow serve`, its engine dialling"
    )
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also CallNow with its limit counters in memory",
    )
    args = parser.parse_args()
    print_machine(f"intake ratio: {args.clients} closed-loop clients, {args.seconds:g} s each")
    print(
        f"{'round':<6} {'app':<9} {'posts/s (303)':>13} {'server CPU':>12} {'ms CPU/post':>13} "
        f"{'client CPU':>12}"
        "  answers by status"
    )
    ratios: dict[str, list[float]] = {}
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="callnow-intake-") as scratch:
            bare_dir, callnow_dir, serve_dir, dial_dir = (
                Path(scratch, n) for n in ("bare", "app", "serve", "dial")
            )
            for directory in (bare_dir, callnow_dir, serve_dir, dial_dir):
                directory.mkdir()
            bare = measure(bare_app(bare_dir), args.clients, args.seconds)
            measured = {"CallNow": measure(callnow_app(callnow_dir), args.clients, args.seconds)}
            if args.what_if:
                what_if_dir = Path(scratch, "what-if")
                what_if_dir.mkdir()
                app = callnow_app(what_if_dir, counters="memory://")
                measured["what-if"] = measure(app, args.clients, args.seconds)
            if args.engine:
                measured["+engine"] = measure_with_engine(
                    serve_dir, args.clients, args.seconds, AS_SHIPPED
                )
                measured["+dialling"] = measure_with_engine(
                    dial_dir, args.clients, args.seconds, EVERY_POST_DIALLED
                )
        print(f"{round_number:<6} {bare.line('bare')}")
        for label, callnow in measured.items():
            rate = callnow.posts_per_s / bare.posts_per_s if bare.posts_per_s else float("nan")
            cpu = bare.cpu_ms_per_post / callnow.cpu_ms_per_post
            ratios.setdefault(f"{label} / bare, posts/s", []).append(rate)
            ratios.setdefault(f"{label} / bare, CPU per post", []).append(cpu)
            print(f"{round_number:<6} {callnow.line(label)}")
            print(f"{round_number:<6} {label} / bare: {rate:.0%} of the posts/s, CPU {cpu:.0%}")
    print()
    for label, values in ratios.items():
        print(f"{label}, median of {len(values)}: {statistics.median(values):.0%}")
    print("(target: at least 50 %)")


if __name__ == "__main__":
    main()
