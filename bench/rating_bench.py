"""How fast the rating core prices calls against a 50,000-prefix deck.

Run: .venv/bin/python bench/rating_bench.py [--calls 200000] [--runs 5]

Prints calls rated per second (median of the runs), per-call latency percentiles, the deck's
memory as tracemalloc sees it, and the machine. Rating here is the whole billing step for one
answered call: deck in force at answer time, longest-prefix match, increments, minimum, rounding,
tax and the Charge record. Classifying the number (phonenumbers) happens once per request, before
dialling; its cost is printed separately for scale.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callnow.domain.destinations import DestinationClass, classify_destination
from callnow.domain.rating import DeckSet, RateDeck, RateEntry, Rater

SEED = 20261125
DECK_SIZE = 50_000
OLD_DECK_FROM = datetime(2026, 1, 1, tzinfo=UTC)
NEW_DECK_FROM = datetime(2026, 7, 1, tzinfo=UTC)
INCREMENTS = [(60, 60), (30, 6), (1, 1)]


def build_entries(size: int, rng: random.Random) -> list[RateEntry]:
    """Every country code, then ranges under them 1-6 digits deeper (typical deck lengths 2-9)."""
    country_codes = sorted(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    prefixes = dict.fromkeys(country_codes)
    while len(prefixes) < size:
        country = rng.choice(country_codes)
        depth = rng.choices([1, 2, 3, 4, 5, 6], weights=[5, 20, 30, 25, 15, 5])[0]
        prefixes.setdefault(country + "".join(rng.choices("0123456789", k=depth)))
    entries = []
    for prefix in prefixes:
        initial, subsequent = rng.choice(INCREMENTS)
        entries.append(
            RateEntry(
                prefix=prefix,
                description=f"destination {prefix}",
                connection_fee_micros=rng.choice([0, 0, 0, 50_000, 100_000]),
                price_per_minute_micros=rng.randrange(5_000, 3_000_000, 500),
                initial_increment_s=initial,
                subsequent_increment_s=subsequent,
                minimum_charge_micros=rng.choice([0, 0, 0, 250_000, 1_000_000]),
            )
        )
    return entries


def build_calls(entries: list[RateEntry], count: int, rng: random.Random) -> list[tuple]:
    """Numbers under random deck prefixes (11-13 digits), answered across both deck periods."""
    calls = []
    span_s = int((NEW_DECK_FROM - OLD_DECK_FROM).total_seconds()) * 2
    for _ in range(count):
        prefix = rng.choice(entries).prefix
        length = max(len(prefix) + 1, rng.randint(11, 13))
        number = "+" + prefix + "".join(rng.choices("0123456789", k=length - len(prefix)))
        answered_at = OLD_DECK_FROM + timedelta(seconds=rng.randrange(span_s))
        duration_s = (
            rng.choice([0, 1, 30, 59, 60, 61]) if rng.random() < 0.1 else rng.randrange(1800)
        )
        calls.append((number, DestinationClass.INTERNATIONAL, answered_at, duration_s))
    return calls


def deck_memory_bytes(entries_seed: int) -> int:
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    deck = RateDeck("mem", OLD_DECK_FROM, build_entries(DECK_SIZE, random.Random(entries_seed)))
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(deck) == DECK_SIZE
    return after - before


def throughput(rater: Rater, calls: list[tuple]) -> float:
    rate = rater.rate
    started = time.perf_counter()
    for number, destination_class, answered_at, duration_s in calls:
        rate(number, destination_class, answered_at, duration_s)
    return len(calls) / (time.perf_counter() - started)


def latencies_ns(rater: Rater, calls: list[tuple]) -> list[int]:
    rate, clock = rater.rate, time.perf_counter_ns
    samples = []
    for number, destination_class, answered_at, duration_s in calls:
        started = clock()
        rate(number, destination_class, answered_at, duration_s)
        samples.append(clock() - started)
    return samples


def lookup_throughput(deck: RateDeck, calls: list[tuple]) -> float:
    find = deck.find
    digits = [call[0][1:] for call in calls]
    started = time.perf_counter()
    for number in digits:
        find(number)
    return len(digits) / (time.perf_counter() - started)


def classify_throughput(calls: list[tuple]) -> float:
    numbers = [call[0] for call in calls[:2000]]
    started = time.perf_counter()
    for number in numbers:
        classify_destination(number, "+61290001111", "AU")
    return len(numbers) / (time.perf_counter() - started)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    wall_started = time.perf_counter()

    rng = random.Random(SEED)
    entries = build_entries(DECK_SIZE, rng)
    old_deck = RateDeck("2026-01", OLD_DECK_FROM, entries)
    new_deck = RateDeck("2026-07", NEW_DECK_FROM, entries)
    rater = Rater(DeckSet([old_deck, new_deck]))
    calls = build_calls(entries, args.calls, rng)
    lengths = sorted({len(entry.prefix) for entry in entries})

    throughput(rater, calls[:10_000])  # warm up
    runs = [throughput(rater, calls) for _ in range(args.runs)]
    samples = sorted(latencies_ns(rater, calls[:100_000]))
    lookups = statistics.median(lookup_throughput(old_deck, calls) for _ in range(3))
    classified = classify_throughput(calls)
    memory = deck_memory_bytes(SEED)

    print(f"machine      : {platform.platform()}; Python {platform.python_version()}")
    print(f"cpu          : {cpu_model()}")
    print(f"deck         : {len(old_deck):,} prefixes, lengths {lengths[0]}-{lengths[-1]}")
    print(f"deck memory  : {memory / 2**20:.1f} MiB (tracemalloc, entries + index)")
    print(f"calls        : {len(calls):,} per run, {args.runs} runs, 2 decks in force over time")
    print(
        f"rated/s      : {statistics.median(runs):,.0f} median "
        f"(min {min(runs):,.0f}, max {max(runs):,.0f})"
    )
    print(
        f"latency/call : p50 {samples[len(samples) // 2] / 1000:.2f} us, "
        f"p99 {samples[int(len(samples) * 0.99)] / 1000:.2f} us "
        f"(perf_counter_ns around each call, {len(samples):,} calls)"
    )
    print(f"lookup only  : {lookups:,.0f} longest-prefix matches/s")
    print(f"classify     : {classified:,.0f} numbers/s (phonenumbers, once per request)")
    print(f"bench time   : {time.perf_counter() - wall_started:.1f} s")


if __name__ == "__main__":
    main()
