"""Callbacks per second with 1, 2 and 3 engines behind a Kamailio front door, side by side.

Run: .venv/bin/python bench/scale_out_bench.py [--engines 1,2,3] [--per-engine 24] [--concurrent 6]
                                               [--rounds 2]

The layout of tests/e2e/test_scale_out.py (tests/support/scale_out.py): real `callnow engine`
processes on 127.0.0.11, .12, .13, each with the rtpengine it spawns on its own address, on a
throwaway PostgreSQL database (127.0.0.1:5432) and the machine's Redis; Kamailio
(peers/kamailio/front_door.cfg) in front, with the engines as its dispatcher set. SIPp plays
the owner's phone (answers at once, presses 1 by SIP INFO through the front door) and the
visitor's (answers at once, hangs up after 0.3 s with a BYE through the front door).

For each engine count: start the front door and the engines, warm up (the visitors' numbers
come from a pool whose prompts are rendered once, in the first warm-up), then queue
`--per-engine` x N callbacks at once and time them from the commit of the queue to the end of
the last one that completed. Reported: completed callbacks per second, anything not completed
(not timed: an owner's phone that never answered rings out its 30 s), and the factor of the
best of `--rounds` alternating runs against one engine's best. The run is bounded: each step
waits at most `--step-timeout`.

The engines, their rtpengines, SIPp, Kamailio and PostgreSQL all share this machine's cores, so
the factor is bounded by CPU (two cores here), not by the design: on separate hosts each engine
brings its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _machine import print_machine  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from callnow.bootstrap import seed_default_deck  # noqa: E402
from callnow.domain.request_state import TERMINAL, RequestState  # noqa: E402
from callnow.store.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from callnow.store.models import CallRequest  # noqa: E402
from tests.peers.sipp import start_sipp  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.scale_out import (  # noqa: E402
    ENGINE_HOSTS,
    engines_behind,
    queue_requests,
    start_front_door,
)
from tests.support.world import seed_alice  # noqa: E402

PG_SERVER = os.environ.get("CALLNOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
NUMBER_POOL = [f"+6129037{6000 + i:04d}" for i in range(12)]


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"callnow_bench_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def numbers(count: int) -> list[str]:
    return [NUMBER_POOL[i % len(NUMBER_POOL)] for i in range(count)]


def wait_all_ended(sessions, ids: list[int], timeout_s: float) -> tuple[float, Counter[str]]:
    """Seconds until the last of `ids` that completed did (a request that ends otherwise, an
    owner who never answered, may take its ring time and is reported, not timed), and the
    requests' states once all are final or the timeout passed."""
    started = time.monotonic()
    final = {state.value for state in TERMINAL}
    completed, last_completed = 0, 0.0
    while True:
        with sessions() as session:
            query = select(CallRequest.state).where(CallRequest.id.in_(ids))
            states = Counter(session.scalars(query))
        now = time.monotonic() - started
        if states.get(RequestState.COMPLETED.value, 0) > completed:
            completed, last_completed = states[RequestState.COMPLETED.value], now
        if sum(n for s, n in states.items() if s in final) == len(ids) or now > timeout_s:
            return last_completed, states
        time.sleep(0.05)


def step(database_url: str, sessions, engines: int, args, workdir: Path) -> tuple[float, str]:
    calls = ("-m", "1000000", "-timeout", f"{int(args.step_timeout) + 120}s")
    owner = start_sipp("rr_answer_info_dtmf.xml", workdir / "owner", {"digit": "1"}, calls)
    trunk = start_sipp("rr_answer_then_bye.xml", workdir / "trunk", {}, calls)
    addresses = [(host, free_port(host)) for host in ENGINE_HOSTS[:engines]]
    door = start_front_door(
        workdir / "front-door", addresses, pbx=owner.address, trunk=trunk.address
    )
    settings = {
        "CALLNOW_ENGINE__POLL_INTERVAL_S": "0.2",
        "CALLNOW_ENGINE__MAX_CONCURRENT_CALLS": str(args.concurrent),
        "CALLNOW_ENGINE__MAX_CALLS_PER_EXTENSION": "1000",
        "CALLNOW_ENGINE__MAX_CALLS_PER_TENANT": "1000",
        "CALLNOW_SIP__MAX_CALL_DURATION_S": "20",
        "CALLNOW_LOG_LEVEL": "warning",
    }
    try:
        with engines_behind(
            door,
            addresses,
            trunk=trunk.address,
            database_url=database_url,
            workdir=workdir,
            extra=settings,
        ):
            warm = queue_requests(sessions, numbers(len(NUMBER_POOL)))
            wait_all_ended(sessions, warm, args.step_timeout)
            count = args.per_engine * engines
            ids = queue_requests(sessions, numbers(count))
            elapsed, states = wait_all_ended(sessions, ids, args.step_timeout)
    finally:
        door.stop()
        owner.stop()
        trunk.stop()
    done = states.get(RequestState.COMPLETED.value, 0)
    rate = done / elapsed if elapsed else 0.0
    others = ", ".join(f"{s} {n}" for s, n in sorted(states.items()) if s != "completed")
    print(
        f"{engines} engine(s): {done}/{count} completed in {elapsed:5.1f} s = "
        f"{rate:5.2f} callbacks/s" + (f"  (not completed: {others})" if others else ""),
        flush=True,
    )
    return rate, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="1,2,3", help="engine counts, e.g. 1,2,3")
    parser.add_argument("--per-engine", type=int, default=24, help="callbacks per engine")
    parser.add_argument("--concurrent", type=int, default=6, help="callbacks at once per engine")
    parser.add_argument("--step-timeout", type=float, default=90.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="run the engine counts in turn this often (1, 2, 3, 1, 2, 3): the shared machine "
        "drifts, alternating shows how much; the best of each is compared",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.engines.split(",")]
    if not counts or min(counts) < 1 or max(counts) > len(ENGINE_HOSTS):
        parser.error(f"engine counts are 1 to {len(ENGINE_HOSTS)}")
    print_machine("scale-out: callbacks/s with N engines behind Kamailio")
    print(f"{args.per_engine} callbacks per engine, {args.concurrent} at once per engine\n")
    rates: dict[int, list[float]] = {engines: [] for engines in counts}
    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        db = make_engine(url)
        sessions = make_session_factory(db)
        with transaction(sessions) as session:
            seed_alice(session)
            seed_default_deck(session)
        try:
            for round_ in range(1, args.rounds + 1):
                for engines in counts:
                    workdir = Path(tmp) / f"r{round_}-n{engines}"
                    rate, _ = step(url, sessions, engines, args, workdir)
                    rates[engines].append(rate)
        finally:
            db.dispose()
    best = {engines: max(values) for engines, values in rates.items()}
    base = best.get(1) or next(iter(best.values()))
    print()
    print("engines | callbacks/s, each round | best  | factor (best)")
    for engines, values in rates.items():
        each = ", ".join(f"{rate:.2f}" for rate in values)
        factor = best[engines] / base if base else 0.0
        print(f"{engines:7d} | {each:23s} | {best[engines]:5.2f} | {factor:5.2f}x")


if __name__ == "__main__":
    main()
