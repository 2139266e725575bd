"""What CallNow's public form post costs next to the least a web app could do with it.

    .venv/bin/python bench/intake_ratio.py [--clients 8] [--seconds 10]

Side by side in one run (so both see the same machine), each served by uvicorn on 127.0.0.1
in this process, each on a fresh SQLite file:

- CallNow: `create_app` as `callnow serve` builds it, engine off, the demo page (no image
  check), every abuse limit lifted, a new number on every post, so each post does the whole
  intake (validation, checks, the request row, its history, the 303);
- bare: Starlette parsing the same form fields and inserting one row.

The clients run in a separate process (closed loop: each posts again as soon as it has its
answer), so they do not share the server's interpreter lock. Prints requests/s of each and
CallNow's share of the bare figure. Not run: CallNow with its engine in-process, which needs
SIP and rtpengine ports (bench/request_latency_bench.py covers intake with the engine dialling).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import print_machine
from bench._web_apps import bare_app, callnow_app, post_closed_loop
from tests.support.http_server import served


def measure(app: Any, clients: int, seconds: float) -> tuple[float, dict[int, int]]:
    """Accepted posts (303) per second, and all answers by status."""
    with served(app) as base, ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        statuses, started, ended = pool.submit(post_closed_loop, base, clients, seconds).result()
    return statuses.get(303, 0) / (ended - started), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print_machine(f"intake ratio: {args.clients} closed-loop clients, {args.seconds:g} s each")
    with tempfile.TemporaryDirectory(prefix="callnow-intake-") as scratch:
        bare_dir, callnow_dir = Path(scratch, "bare"), Path(scratch, "callnow")
        bare_dir.mkdir()
        callnow_dir.mkdir()
        bare_rate, bare_statuses = measure(bare_app(bare_dir), args.clients, args.seconds)
        callnow_rate, callnow_statuses = measure(
            callnow_app(callnow_dir), args.clients, args.seconds
        )
    print(f"{'app':<8} {'posts/s (303)':>14}  answers by status")
    print(f"{'bare':<8} {bare_rate:>14.1f}  {bare_statuses}")
    print(f"{'CallNow':<8} {callnow_rate:>14.1f}  {callnow_statuses}")
    ratio = callnow_rate / bare_rate if bare_rate else float("nan")
    print(f"\nCallNow / bare: {ratio:.0%} (target: at least 50 %)")


if __name__ == "__main__":
    main()
