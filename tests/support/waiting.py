"""Waiting for something to become true in a test, instead of sleeping and hoping it did.

Prefer awaiting the event itself (an `asyncio.Event`, a task, a future) where the code under
test offers one; `until` is for states only visible by looking (a row in the store, a flag).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# How often a condition is looked at: short, so a test goes on as soon as it holds.
CHECK_EVERY_S = 0.005


async def until(condition: Callable[[], object], *, within_s: float = 10.0, what: str = "") -> None:
    """Return once `condition()` is true; fail the test if it is not within `within_s`.

    The deadline only bounds a broken run: a passing test never waits for it."""
    try:
        async with asyncio.timeout(within_s):
            while not condition():
                await asyncio.sleep(CHECK_EVERY_S)
    except TimeoutError:
        raise AssertionError(f"not true within {within_s} s: {what or condition}") from None
