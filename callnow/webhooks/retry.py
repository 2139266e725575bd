"""When to try a failed webhook delivery again: exponential backoff with jitter, for a day."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    # Each delay is scaled by a random factor in [1 - jitter, 1], so receivers that came back
    # after an outage are not hit by every sender at the same instant.
    jitter: float = 0.5

    def next_attempt(
        self,
        created_at: datetime,
        attempts: int,
        now: datetime,
        rand: random.Random | None = None,
    ) -> datetime | None:
        """After `attempts` failed tries, when to try again; None once the day is over."""
        exponent = min(max(attempts - 1, 0), 30)
        delay = min(self.first_delay * (2**exponent), self.max_delay)
        factor = 1.0 - self.jitter * (rand or random).random()
        at = now + delay * factor
        if at > created_at + self.give_up_after:
            return None
        return at
