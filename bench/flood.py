"""Does a flood of public form posts leave health checks and the portal answering?

    .venv/bin/python bench/flood.py [--clients 64] [--seconds 10] [--sources 1000]

CallNow's web app (engine off, fresh SQLite, every abuse limit lifted so each accepted post does
the whole intake) is served by uvicorn on 127.0.0.1 in this process, trusting 127.0.0.1 as its
proxy. Two other processes, so neither shares the server's interpreter lock:

- the flood: `--clients` connections posting the public form in a closed loop for `--seconds`,
  each post from one of `--sources` client addresses (X-Forwarded-For);
- the probe: every 50 ms, GET /api/v1/health and then GET /portal/login (an unrelated page),
  from a second before the flood until well after it.

Prints the flood's answers by status, p50/p99 of each probed path before and during the flood,
and the recovery time: from the flood's last answer until health answers under 100 ms again.
Targets: p99 under 100 ms during the flood, recovery under 5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import percentile, print_machine
from bench._web_apps import callnow_app, post_closed_loop_at, probe_every
from tests.support.http_server import served

HEALTH = "/api/v1/health"
OTHER_PAGE = "/portal/login"
PROBE_INTERVAL_S = 0.05
HEALTHY_S = 0.100
# Both processes import the service first; the flood starts once that is surely done.
SPAWN_SLACK_S = 5.0
BEFORE_S = 1.0
AFTER_S = 10.0


def client_addresses(count: int) -> list[str]:
    """`count` distinct addresses, 250 to a /24, from the documentation-free 10/8 block."""
    return [f"10.{n // 62_500}.{n // 250 % 250}.{n % 250 + 1}" for n in range(count)]


def row(label: str, waits: list[float]) -> str:
    if not waits:
        return f"  {label:<24} no probes"
    p50, p99 = percentile(waits, 50) * 1000, percentile(waits, 99) * 1000
    return f"  {label:<24} {len(waits):>4} probes  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  " + (
        f"max {max(waits) * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sources", type=int, default=1000)
    args = parser.parse_args()
    print_machine(
        f"flood: {args.clients} connections for {args.seconds:g} s from {args.sources} addresses"
    )
    with tempfile.TemporaryDirectory(prefix="callnow-flood-") as scratch:
        app = callnow_app(Path(scratch), trusted_proxies=["127.0.0.1/32"])
        spawn = get_context("spawn")
        with served(app) as base, ProcessPoolExecutor(2, mp_context=spawn) as pool:
            flood_at = time.monotonic() + SPAWN_SLACK_S
            probing = pool.submit(
                probe_every,
                base,
                [HEALTH, OTHER_PAGE],
                PROBE_INTERVAL_S,
                flood_at - BEFORE_S,
                flood_at + args.seconds + AFTER_S,
            )
            flooding = pool.submit(
                post_closed_loop_at,
                flood_at,
                base,
                args.clients,
                args.seconds,
                client_addresses(args.sources),
            )
            statuses, started, ended, client_cpu_s = flooding.result()
            probes = probing.result()

    print(f"flood: {sum(statuses.values())} posts in {ended - started:.1f} s, by status {statuses}")
    print(
        f"       {statuses.get(303, 0) / (ended - started):.1f} accepted posts/s, flood client "
        f"at {100 * client_cpu_s / (ended - started):.0f} % of a core"
    )
    for path in (HEALTH, OTHER_PAGE):
        before = [wait for p, at, wait in probes if p == path and at < started]
        during = [wait for p, at, wait in probes if p == path and started <= at <= ended]
        print(f"{path}")
        print(row("before the flood", before))
        print(row("during the flood", during))
    recovered = [
        at - ended for p, at, wait in probes if p == HEALTH and at > ended and wait < HEALTHY_S
    ]
    if recovered:
        print(f"\nrecovery: health answered under 100 ms {recovered[0]:.3f} s after the flood's")
        print("last answer (target: under 5 s; p99 target during the flood: under 100 ms)")
    else:
        print(f"\nrecovery: health never answered under 100 ms in the {AFTER_S:g} s after")


if __name__ == "__main__":
    main()
