"""Least-cost order of the trunks that may dial a number.

Each trunk may name a rate deck holding its carrier's prices (what the platform pays, not what
owners are charged). Where several trunks may dial a number, those whose deck prices it are
tried first, cheapest first; the rest follow; ties and unpriced trunks keep the configured
order. Failover itself (the next trunk on 5xx or no response) does not change.

"Cheapest" compares the exact cost of one reference call (`REFERENCE_CALL_S`) under each
entry's connection fee, per-minute price, increments and minimum charge, in micro-units:
a cheap minute behind a high connection fee can lose to a dearer minute without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from callnow.domain.rating import RateDeck, RateEntry, billed_seconds

# A typical answered callback; prices are compared on a call this long.
REFERENCE_CALL_S = 180

T = TypeVar("T")


def reference_cost(entry: RateEntry, duration_s: int = REFERENCE_CALL_S) -> int:
    """Exact cost of a `duration_s` call at `entry`, in micro-units times 60 (no rounding)."""
    seconds = billed_seconds(duration_s, entry.initial_increment_s, entry.subsequent_increment_s)
    exact = entry.connection_fee_micros * 60 + entry.price_per_minute_micros * seconds
    return max(exact, entry.minimum_charge_micros * 60)


def least_cost_order(
    trunks: Sequence[T], e164: str, deck_of: Callable[[T], RateDeck | None]
) -> list[T]:
    """`trunks` (already those that may dial `e164`, in configured order) in the order to try:
    priced by their deck first, cheapest first, then the unpriced, each group stable."""
    digits = e164.removeprefix("+")
    priced: list[tuple[int, int, T]] = []
    unpriced: list[T] = []
    for index, trunk in enumerate(trunks):
        deck = deck_of(trunk)
        entry = deck.find(digits) if deck is not None else None
        if entry is None:
            unpriced.append(trunk)
        else:
            priced.append((reference_cost(entry), index, trunk))
    priced.sort(key=lambda item: (item[0], item[1]))
    return [trunk for _, _, trunk in priced] + unpriced
