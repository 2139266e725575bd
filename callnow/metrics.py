"""Prometheus metrics of one process, served on a listener of its own.

One `Metrics` per process, made by the composition root (or `callnow engine`) and handed to the
parts that count: nothing registers on import, nothing here knows the product's rules, and the
domain never sees it. Each process (the web, and every engine, also the engine child of
`callnow serve`) serves its own registry on its own port rather than sharing files in
prometheus_client's multiprocess mode: an engine child that is restarted, killed or runs on
another host keeps exact counters of its own, gauges need no aggregation mode, and nothing has
to clean a shared directory. Prometheus sums across the processes' `instance` labels.

Label values are bounded: every one goes through `_bounded`, which keeps only values from a
fixed list (anything else becomes `other`), so no phone number, name or id can become a series.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from callnow.config import LIMIT_RULES
from callnow.domain.calls import Disposition
from callnow.domain.request_state import RequestState

log = logging.getLogger(__name__)

Process = Literal["web", "engine"]
# A label value is a short lower-case word: never digits (numbers, ids) nor capitals (names).
_WORD = re.compile(r"[a-z_]{1,32}")
OTHER = "other"

# Seconds from an INVITE to its answer; seconds an answered leg lasted.
SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
NG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2)


def _bounded(value: str, allowed: Iterable[str] | None = None) -> str:
    if allowed is not None:
        return value if value in allowed else OTHER
    return value if _WORD.fullmatch(value) else OTHER


@dataclass
class _Source:
    """A value read at scrape time: queue depth, a pool's use, an outbox's backlog."""

    read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]
    # The label values this source may show (others become `other`); None: short words.
    allowed: frozenset[str] | None = None


class _ScrapeTimeGauges(Collector):
    """Gauges computed when Prometheus asks, from callbacks: cheap when nobody scrapes, and
    never stale. A failing source is logged and left out of that scrape."""

    def __init__(self) -> None:
        self._gauges: dict[str, tuple[str, tuple[str, ...], list[_Source]]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, doc: str, labels: tuple[str, ...], source: _Source) -> None:
        with self._lock:
            self._gauges.setdefault(name, (doc, labels, []))[2].append(source)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            gauges = {
                name: (doc, labels, list(s)) for name, (doc, labels, s) in self._gauges.items()
            }
        for name, (doc, labels, sources) in gauges.items():
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for source in sources:
                try:
                    for values, value in source.read():
                        family.add_metric([_bounded(v, source.allowed) for v in values], value)
                except Exception:
                    log.warning("metrics source for %s failed", name, exc_info=True)
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class Metrics:
    """The counters, histograms and scrape-time gauges of one process."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._gauges = _ScrapeTimeGauges()
        r.register(self._gauges)
        # The web.
        self.requests = Counter(
            "callnow_requests", "Callback requests taken in, by channel and decision.",
            ["channel", "decision"], registry=r,
        )  # fmt: skip
        self.refusals = Counter(
            "callnow_refusals", "Posts and calls refused by a limit, by limit.", ["limit"],
            registry=r,
        )  # fmt: skip
        # The engine.
        self.claims = Counter("callnow_claims", "Requests claimed from the queue.", registry=r)
        self.lease_takeovers = Counter(
            "callnow_lease_takeovers",
            "Requests of a dead engine (lease run out) ended by this engine.", registry=r,
        )  # fmt: skip
        self.callbacks = Counter(
            "callnow_callbacks", "Callbacks ended, by the request's final state.", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.legs = Counter(
            "callnow_legs", "Call legs ended, by role and disposition.", ["role", "disposition"],
            registry=r,
        )  # fmt: skip
        self.setup_seconds = Histogram(
            "callnow_call_setup_seconds", "From a leg's INVITE to its answer.", ["role"],
            buckets=SETUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.duration_seconds = Histogram(
            "callnow_call_duration_seconds", "How long an answered leg lasted.", ["role"],
            buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.ng_seconds = Histogram(
            "callnow_rtpengine_ng_seconds", "Round trip of rtpengine ng commands.", ["command"],
            buckets=NG_BUCKETS, registry=r,
        )  # fmt: skip
        self.ng_timeouts = Counter(
            "callnow_rtpengine_ng_timeouts", "rtpengine ng commands that got no answer.",
            ["command"], registry=r,
        )  # fmt: skip
        self.in_progress = Gauge(
            "callnow_callbacks_in_progress", "Callbacks this engine runs now.", registry=r
        )
        self.draining = Gauge(
            "callnow_draining", "1 while this process drains before it stops.", registry=r
        )

    # -- recording (each call bounds its labels) -----------------------------------------------

    def request_taken(self, channel: str, decision: str) -> None:
        self.requests.labels(_bounded(channel, CHANNELS), _bounded(decision, DECISIONS)).inc()

    def refused(self, limit: str) -> None:
        self.refusals.labels(_bounded(limit, LIMITS)).inc()

    def callback_ended(self, outcome: str) -> None:
        self.callbacks.labels(_bounded(outcome, OUTCOMES)).inc()

    def leg_ended(
        self, role: str, disposition: str, setup_s: float | None, duration_s: float | None
    ) -> None:
        role = _bounded(role, ROLES)
        self.legs.labels(role, _bounded(disposition, DISPOSITIONS)).inc()
        if setup_s is not None:
            self.setup_seconds.labels(role).observe(max(0.0, setup_s))
        if duration_s is not None:
            self.duration_seconds.labels(role).observe(max(0.0, duration_s))

    def ng_request(self, command: str, seconds: float, timed_out: bool) -> None:
        """The rtpengine client's observer: one call per ng request."""
        command = _bounded(command.replace(" ", "_"), NG_COMMANDS)
        if timed_out:
            self.ng_timeouts.labels(command).inc()
        else:
            self.ng_seconds.labels(command).observe(seconds)

    # -- scrape-time sources --------------------------------------------------------------------

    def watch_queue(self, read: Callable[[], tuple[int, float]]) -> None:
        """`read` gives (queued requests, age of the oldest in seconds)."""

        # Two small aggregate reads per scrape: simpler than sharing one between two families.
        def depth() -> list[tuple[tuple[str, ...], float]]:
            return [((), float(read()[0]))]

        def oldest() -> list[tuple[tuple[str, ...], float]]:
            return [((), read()[1])]

        self._gauges.add(
            "callnow_queue_depth", "Requests waiting to be claimed.", (), _Source(depth)
        )
        self._gauges.add(
            "callnow_queue_oldest_age_seconds",
            "How long the oldest queued request has waited.",
            (),
            _Source(oldest),
        )

    def watch_owners_held(self, read: Callable[[], int]) -> None:
        """`read` gives how many owners are held after their phone answered busy."""
        self._gauges.add(
            "callnow_owners_held",
            "Owners not rung again until the hold after their phone answered busy ends.",
            (),
            _Source(lambda: [((), float(read()))]),
        )

    def watch_pool(self, pool_name: str, read: Callable[[], tuple[int, int]]) -> None:
        """`read` gives (connections in use, pool size) of a database pool."""

        def use() -> Iterator[tuple[tuple[str, ...], float]]:
            in_use, size = read()
            yield (pool_name, "in_use"), float(in_use)
            yield (pool_name, "size"), float(size)

        self._gauges.add(
            "callnow_db_pool_connections",
            "Database pool connections, by pool and state.",
            ("pool", "state"),
            _Source(use),
        )

    def watch_outbox(self, outbox: str, read: Callable[[], int]) -> None:
        """The hook for every outbox a sender drains (webhooks now, e-mail later)."""
        self._gauges.add(
            "callnow_outbox_backlog",
            "Messages waiting in an outbox, by outbox.",
            ("outbox",),
            _Source(lambda: [((outbox,), float(read()))]),
        )

    def watch_trunk_registrations(
        self, names: Iterable[str], read: Callable[[], Iterable[tuple[str, bool]]]
    ) -> None:
        """`read` gives (trunk name, registered) for each trunk that keeps a registration.

        The label is the trunk's configured name (from the settings, a handful at most): only
        the `names` given here are shown, anything else is `other`."""
        allowed = frozenset(names)

        def states() -> Iterator[tuple[tuple[str, ...], float]]:
            for name, registered in read():
                yield (name,), 1.0 if registered else 0.0

        self._gauges.add(
            "callnow_trunk_registered",
            "1 while the trunk's registration is in force, 0 while it is not, by trunk name.",
            ("trunk",),
            _Source(states, allowed),
        )

    # -- serving ----------------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> MetricsListener:
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("%s metrics on http://%s:%s/metrics", self.process, host, port)
        return MetricsListener(server.shutdown, server.server_close, thread)


@dataclass
class MetricsListener:
    _shutdown: Callable[[], None]
    _close: Callable[[], None]
    _thread: threading.Thread

    def stop(self) -> None:
        self._shutdown()
        self._close()
        self._thread.join(timeout=5)


CHANNELS = frozenset({"web", "one_step", "api"})
LIMITS = frozenset(LIMIT_RULES) | {"load_shedding"}  # the throttle's, and the 503 of load shedding
OUTCOMES = frozenset(state.value for state in RequestState)
DISPOSITIONS = frozenset(disposition.value for disposition in Disposition)
NG_COMMANDS = frozenset(
    {
        "ping",
        "offer",
        "answer",
        "delete",
        "query",
        "play_media",
        "stop_media",
        "block_media",
        "unblock_media",
        "block_dtmf",
        "unblock_dtmf",
        "subscribe_request",
        "subscribe_answer",
        "unsubscribe",
        "list",
        "statistics",
    }
)
DECISIONS = frozenset({"accept", "confirm", "confirm_web", "reject", "existing", "throttled"})
ROLES = frozenset({"owner", "requester"})
