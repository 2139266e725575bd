"""A per-source rate limit on the SIP port: each source address gets a token bucket.

It counts requests outside our calls from untrusted sources (the only ones that could make the
stack answer a stranger); those over the limit get nothing, so a flood from one address, or one
forged address, reflects nothing. Calls in progress and trusted sources are never counted.

The table of sources is bounded: when it is full, buckets that have refilled completely (their
sources idle) go first, and if none has, the whole table is forgotten (every source then starts
full again, which only ever errs towards answering).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SOURCES = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class SourceRateLimit:
    """`per_second` requests a second from one address, in bursts of up to `burst`."""

    def __init__(self, per_second: float, burst: int, max_sources: int = MAX_SOURCES) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a source rate limit needs a positive rate and a burst of at least 1")
        self.per_second = per_second
        self.burst = burst
        self._max_sources = max_sources
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self._max_sources:
                self._forget_idle(now)
            bucket = self._buckets[source] = _Bucket(float(self.burst), now)
        else:
            refill = (now - bucket.at) * self.per_second
            bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, refill))
            bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.per_second
        idle = [src for src, b in self._buckets.items() if now - b.at >= full_after]
        for src in idle:
            del self._buckets[src]
        if len(self._buckets) >= self._max_sources:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
