"""What a form post's limit counters cost as a flood fills their windows.

    .venv/bin/python bench/limit_counters_bench.py [--rate 100] [--posts 7000] [--url URL]

In this process, on a fresh SQLite file (or the PostgreSQL database `--url` names, whose
`limit_counts` table it empties first): a post's counters as the public form counts them, every
limit lifted to 1,000,000 a minute (as the intake bench lifts them), the source, network, page
and platform keys shared by every post, the number and its block new on each. The posts' clock
runs at `--rate` posts a second, so the minute fills up to `--rate` x 60 hits. Each post is one
transaction: `take_then_hit` for the source and the page, `take` for the owner's call, commit.

Prints, for each thousand posts, the CPU per post and how many hits the minute held before them.
The target: a flat line, a check costing the same however many hits its keys hold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from bench._machine import print_machine
from callnow.store import limit_counters
from callnow.store.db import make_engine, make_session_factory, migrate, transaction
from callnow.store.limit_counters import Counter, Window
from callnow.store.models import LimitCount

LIFTED = [Window(1_000_000, 60)]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BLOCK = 1_000


def one_post(sessions: sessionmaker[Session], n: int, now: datetime) -> None:
    source = [Counter("per_source", "203.0.113.9", LIFTED)]
    source.append(Counter("per_network", "203.0.113.0/24", LIFTED))
    page = [Counter("captcha_auto_on", "1", LIFTED), Counter("spike_captcha", "1", LIFTED)]
    number = f"+6129{n:07d}"
    owner_call = [
        Counter("per_profile", "1", LIFTED),
        Counter("per_number", number, LIFTED),
        Counter("per_block", number[:-3], LIFTED),
        Counter("platform", "", LIFTED),
    ]
    with transaction(sessions) as session:
        limit_counters.take_then_hit(session, source, page, now)
        limit_counters.take(session, owner_call, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="posts a second, on their clock")
    parser.add_argument("--posts", type=int, default=7_000)
    parser.add_argument("--url", help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    print_machine(f"limit counters: {args.posts} posts at {args.rate:g}/s on their clock")
    with tempfile.TemporaryDirectory(prefix="callnow-counters-") as scratch:
        url = args.url or f"sqlite:///{scratch}/counters.sqlite3"
        migrate(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            session.execute(delete(LimitCount))
        print(f"{'posts':>11} {'hits in the minute before':>26} {'ms CPU per post':>16}")
        for first in range(0, args.posts, BLOCK):
            began = time.process_time()
            for n in range(first, min(first + BLOCK, args.posts)):
                one_post(sessions, n, START + timedelta(seconds=n / args.rate))
            spent = time.process_time() - began
            held = min(first, int(args.rate * 60))
            posts = min(BLOCK, args.posts - first)
            print(f"{first:>5}-{first + posts:<5} {held:>26} {1000 * spent / posts:>16.3f}")
        engine.dispose()


if __name__ == "__main__":
    main()
