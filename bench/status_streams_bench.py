"""Visitors watching their status pages: what open event streams cost the web, and how soon a
state change reaches them.

    .venv/bin/python bench/status_streams_bench.py                  # SQLite and PostgreSQL
    .venv/bin/python bench/status_streams_bench.py --db postgresql --viewers 100,1000

What runs (all on 127.0.0.1): `callnow serve` as shipped, with the engine off so every request
stays queued and its stream stays open, on a temporary SQLite file or a throwaway PostgreSQL
database. The benchmark posts one request per viewer through the public form, then per step:

- opens one event stream per viewer (`/callnow/john_doe/requests/<token>/events`), each on its
  own connection, and waits until each has its first `queued` event;
- measures, over a quiet window, the serve process's CPU and, on PostgreSQL, the transactions
  per second in the run's database (`pg_stat_database`): what watching costs while nothing
  changes, which is most of a visitor's wait;
- moves all the step's requests to `calling_owner` in one UPDATE, as an engine would, and times
  each stream's `calling_owner` event from that commit (client clock = server clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import cpu_percent, free_udp_port, percentile, print_machine, sample
from bench.request_latency_bench import PROFILE, Numbers, running_service

WINDOW_S = 10.0
DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Viewer:
    url: str
    queued: asyncio.Event = field(default_factory=asyncio.Event)
    changed_at: float = 0.0
    error: str = ""


@dataclass
class StepResult:
    viewers: int
    opened: int
    cpu_pct: float
    xact_per_s: float
    delivery_ms: list[float]
    missed: int


async def post_requests(base_url: str, count: int, numbers: Numbers) -> list[str]:
    """`count` requests through the public form; their status pages' paths."""
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as client:
        page = await client.get(f"/callnow/{PROFILE}")
        match = re.search(r'name="form_token" value="([^"]+)"', page.text)
        if match is None:
            raise SystemExit("the public page gave no form token")
        paths = []
        for _ in range(count):
            number, _digits = numbers.take()
            response = await client.post(
                f"/callnow/{PROFILE}",
                data={"form_token": match.group(1), "name": "Bench Visitor", "number": number},
            )
            if response.status_code != 303:
                raise SystemExit(f"form post answered {response.status_code}")
            paths.append(response.headers["location"])
        return paths


async def watch(client: httpx.AsyncClient, viewer: Viewer, stop: asyncio.Event) -> None:
    try:
        async with client.stream("GET", viewer.url + "/events") as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                state = json.loads(line[5:])["state"]
                if state == "queued":
                    viewer.queued.set()
                elif state == "calling_owner" and not viewer.changed_at:
                    viewer.changed_at = time.time()
                if stop.is_set():
                    return
    except (httpx.HTTPError, asyncio.CancelledError) as exc:
        viewer.error = type(exc).__name__


def xact_count(database_url: str) -> int | None:
    if not database_url.startswith("postgresql"):
        return None
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                        " WHERE datname = current_database()"
                    )
                )
            )
    finally:
        engine.dispose()


def move_to_calling_owner(database_url: str, tokens: list[str]) -> float:
    """One UPDATE for all, as an engine's writes would land; the commit's time."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE call_requests SET state = 'calling_owner' WHERE token = :token"),
                [{"token": token} for token in tokens],
            )
        return time.time()
    finally:
        engine.dispose()


async def run_step(service, paths: list[str]) -> StepResult:
    viewers = [Viewer(path) for path in paths]
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=len(viewers), max_keepalive_connections=0)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(
        base_url=service.base_url, limits=limits, timeout=timeout, trust_env=False
    ) as client:
        tasks = [asyncio.create_task(watch(client, v, stop)) for v in viewers]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await asyncio.gather(*(v.queued.wait() for v in viewers))
        opened = sum(v.queued.is_set() for v in viewers)
        await asyncio.sleep(1.0)  # let the opening settle before measuring the quiet window
        xact_before = await asyncio.to_thread(xact_count, service.database_url)
        first = sample(service.process.pid)
        await asyncio.sleep(WINDOW_S)
        last = sample(service.process.pid)
        xact_after = await asyncio.to_thread(xact_count, service.database_url)
        tokens = [v.url.rsplit("/", 1)[1] for v in viewers]
        committed = await asyncio.to_thread(move_to_calling_owner, service.database_url, tokens)
        deadline = time.time() + DELIVERY_TIMEOUT_S
        while time.time() < deadline and not all(v.changed_at for v in viewers if not v.error):
            await asyncio.sleep(0.05)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    wall = last.at - first.at
    xact_per_s = (
        (xact_after - xact_before) / wall
        if xact_before is not None and xact_after is not None
        else float("nan")
    )
    delivered = [1000 * (v.changed_at - committed) for v in viewers if v.changed_at]
    return StepResult(
        viewers=len(viewers),
        opened=opened,
        cpu_pct=cpu_percent(first, last),
        xact_per_s=xact_per_s,
        delivery_ms=delivered,
        missed=len(viewers) - len(delivered),
    )


def print_rows(rows: list[tuple[str, StepResult]]) -> None:
    print()
    print(
        f"{'db':<11}{'viewers':>8}{'opened':>8}{'serve CPU':>11}{'xact/s':>9}"
        f"{'change p50':>12}{'p99':>9}{'max':>9}{'missed':>8}"
    )
    print("─" * 85)
    for database, row in rows:
        print(
            f"{database:<11}{row.viewers:>8}{row.opened:>8}{row.cpu_pct:>10.0f}%"
            f"{row.xact_per_s:>9.0f}{percentile(row.delivery_ms, 50):>12.0f}"
            f"{percentile(row.delivery_ms, 99):>9.0f}"
            f"{max(row.delivery_ms, default=float('nan')):>9.0f}{row.missed:>8}"
        )
    print(
        "serve CPU = % of one core during a quiet window of "
        f"{WINDOW_S:.0f} s with every stream open; xact/s = transactions per second in the run's"
        " PostgreSQL database in that window; change = ms from the UPDATE's commit to each"
        " stream's calling_owner event; missed = no event within"
        f" {DELIVERY_TIMEOUT_S:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--viewers", default="100,500", help="open streams per step, e.g. 100,500")
    args = parser.parse_args()
    steps = [int(n) for n in args.viewers.split(",")]
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print_machine("status streams: open event streams, their cost and their delivery time")
    rows: list[tuple[str, StepResult]] = []
    for database in databases:
        with (
            tempfile.TemporaryDirectory(prefix="callnow-bench-") as workdir,
            running_service(database, free_udp_port(), Path(workdir), with_engine=False) as service,
        ):
            numbers = Numbers()
            for viewers in steps:
                paths = asyncio.run(post_requests(service.base_url, viewers, numbers))
                row = asyncio.run(run_step(service, paths))
                print(
                    f"{database}: {viewers} viewers, {row.opened} opened,"
                    f" serve {row.cpu_pct:.0f}% CPU, {row.missed} missed",
                    flush=True,
                )
                rows.append((database, row))
    print_rows(rows)


if __name__ == "__main__":
    main()
