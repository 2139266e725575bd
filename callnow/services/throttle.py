"""Rate limits, each counted separately (OWASP: separate counters per source and per target).

Attempts are counted per source address and per source network, whatever they lead to. Requests
that would ring an owner are also counted per profile, per destination number across the whole
platform (call-bombing), per 1,000-number block and for the platform as a whole. A refusal does
not say which limit fired.

Counters live in the service's database by default (they survive a restart; no Redis needed),
in Redis when several web processes share the load, or in process memory (`memory://`).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from callnow.config import LIMIT_RULES, AbuseSettings
from callnow.store import limit_counters


def source_network(address: str) -> str:
    """The /24 of an IPv4 address or the /64 of an IPv6 one; the address itself otherwise."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def number_block(e164: str) -> str:
    """The 1,000-number block of a number: every digit but the last three."""
    return e164[:-3]


# How often the in-process counters drop expired entries.
SWEEP_INTERVAL_S = 10.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-process storage, sweeping out expired entries every 10 s.

    `MemoryStorage` sweeps every key 10 ms after each hit. Windows here last up to a day and
    every source, network, number and block has keys of its own, so each sweep grew with the
    traffic and held the GIL once per request (docs/decisions/0009-swept-rate-limit-counters.md).
    The limits stay exact without sweeps (a hit compares time stamps itself); the sweep only
    frees memory, which may as well wait a few seconds.
    """

    def __init__(self, sweep_interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._sweep_interval_s = sweep_interval_s
        super().__init__()
        self.timer.cancel()  # MemoryStorage's own first sweep, 10 ms away
        self._start_sweep_timer()

    # Replaces MemoryStorage's private scheduler, which every hit calls (limits is pinned; a
    # test fails if a new release renames it).
    def _MemoryStorage__schedule_expiry(self) -> None:
        if not self.timer.is_alive():
            self._start_sweep_timer()

    def _start_sweep_timer(self) -> None:
        sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]  # name-mangled
        self.timer = threading.Timer(self._sweep_interval_s, sweep)
        self.timer.daemon = True  # a pending sweep must not hold up the process's exit
        self.timer.start()


def counters_at(storage_url: str) -> Storage:
    if storage_url.split("://", 1)[0] == "memory":
        return SweptMemoryStorage()
    return storage_from_string(storage_url)  # type: ignore[return-value]  # a sync URL: sync storage


DATABASE_URL = "database://"
# How often the database counters sweep out slices their windows have passed.
PURGE_INTERVAL_S = 30.0


def _counter(rule: str, key: str, items: list[RateLimitItem]) -> limit_counters.Counter:
    windows = [limit_counters.Window(item.amount, item.get_expiry()) for item in items]
    return limit_counters.Counter(rule, key, windows)


def _from_source(address: str) -> list[tuple[str, str]]:
    """The limits every attempt from an address counts against."""
    return [("per_source", address), ("per_network", source_network(address))]


# (rule, key, windows): one counter and its limits.
Check = tuple[str, str, list[RateLimitItem]]


class _LimiterCounters:
    """limits' moving windows, in process memory or in Redis (several processes)."""

    def __init__(self, storage_url: str) -> None:
        self.limiter = MovingWindowRateLimiter(counters_at(storage_url))

    def take(self, checks: list[tuple[str, str, list[RateLimitItem]]], _: Session | None) -> bool:
        for rule, key, items in checks:
            for item in items:
                if not self.limiter.test(item, rule, key):
                    return False
        for rule, key, items in checks:
            for item in items:
                self.limiter.hit(item, rule, key)
        return True

    def hit(self, rule: str, key: str, items: list[RateLimitItem], _: Session | None) -> bool:
        return all([self.limiter.hit(item, rule, key) for item in items])

    def hit_each(
        self, checks: list[tuple[str, str, list[RateLimitItem]]], session: Session | None
    ) -> list[bool]:
        return [self.hit(rule, key, items, session) for rule, key, items in checks]

    def has_room(self, rule: str, key: str, items: list[RateLimitItem], _: Session | None) -> bool:
        return all(self.limiter.test(item, rule, key) for item in items)

    def take_then_hit(
        self, take: list[Check], hit: list[Check], session: Session | None
    ) -> list[bool] | None:
        if not self.take(take, session):
            return None
        return self.hit_each(hit, session)


class _DatabaseCounters:
    """Counters in the service's own database (`store/limit_counters`): durable without Redis.

    Counted in the route's own session when it is given, so on SQLite a route that already
    writes never waits for a second writer of its own; otherwise in a short transaction."""

    def __init__(self, sessions: Callable[[], Session] | None) -> None:
        self._sessions = sessions
        self._next_purge = 0.0

    @contextmanager
    def _session(self, given: Session | None) -> Iterator[Session]:
        if given is not None:
            yield given
            return
        if self._sessions is None:
            raise RuntimeError("database limit counters need a session or a session factory")
        with self._sessions() as own, own.begin():
            yield own

    def _maybe_purge(self, session: Session, now: datetime) -> None:
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL_S
            limit_counters.purge_expired(session, now)

    def take(
        self, checks: list[tuple[str, str, list[RateLimitItem]]], given: Session | None
    ) -> bool:
        now = datetime.now(UTC)
        with self._session(given) as session:
            self._maybe_purge(session, now)
            counters = [_counter(rule, key, items) for rule, key, items in checks]
            return limit_counters.take(session, counters, now)

    def hit(self, rule: str, key: str, items: list[RateLimitItem], given: Session | None) -> bool:
        with self._session(given) as session:
            return limit_counters.hit(session, _counter(rule, key, items), datetime.now(UTC))

    def take_then_hit(
        self, take: list[Check], hit: list[Check], given: Session | None
    ) -> list[bool] | None:
        now = datetime.now(UTC)
        with self._session(given) as session:
            return limit_counters.take_then_hit(
                session, [_counter(*c) for c in take], [_counter(*c) for c in hit], now
            )

    def has_room(
        self, rule: str, key: str, items: list[RateLimitItem], given: Session | None
    ) -> bool:
        with self._session(given) as session:
            return limit_counters.has_room(session, _counter(rule, key, items), datetime.now(UTC))


# A page's posts feed the adaptive image check, then the spike detector (this order).
PAGE_POST_RULES = ("captcha_auto_on", "spike_captcha")


@dataclass(frozen=True)
class PagePost:
    busy: bool  # the page already saw more posts than usual before this one
    spike: bool  # with this one, far more than usual


class Throttle:
    """Every limit of `AbuseSettings`, counted where `storage_url` says.

    Each method takes the route's database session: the database counters (the default)
    count in it, so the hits commit with the route's answer; the others ignore it."""

    def __init__(
        self,
        settings: AbuseSettings,
        sessions: Callable[[], Session] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        # Told the name of the limit that refused (for metrics): a rule name, never a key.
        self._on_refused = on_refused
        self._counters: _LimiterCounters | _DatabaseCounters
        if settings.storage_url.split("://", 1)[0] == "database":
            self._counters = _DatabaseCounters(sessions)
        else:
            self._counters = _LimiterCounters(settings.storage_url)
        self._rules = {name: parse_many(getattr(settings, name)) for name in LIMIT_RULES}

    @property
    def _limiter(self) -> MovingWindowRateLimiter:
        """limits' limiter, for the in-memory and Redis counters only."""
        assert isinstance(self._counters, _LimiterCounters)
        return self._counters.limiter

    def _checks(self, checks: list[tuple[str, str]]) -> list[Check]:
        return [(rule, key, self._rules[rule]) for rule, key in checks]

    def _allow(self, checks: list[tuple[str, str]], session: Session | None) -> bool:
        """Count one hit on each (rule, key) only if every one of them still has room."""
        allowed = self._counters.take(self._checks(checks), session)
        if not allowed:
            self._refused(checks, session)
        return allowed

    def _refused(self, checks: list[tuple[str, str]], session: Session | None) -> None:
        if self._on_refused is not None:
            # Only on a refusal: which limit it was, for the metrics (never said to the client).
            full = [rule for rule, key in checks if self._over(rule, key, session)]
            self._on_refused(full[0] if full else checks[0][0])

    def take_extra(
        self, checks: list[tuple[str, str, list[RateLimitItem]]], session: Session | None = None
    ) -> bool:
        """Limits configured outside `AbuseSettings` (password-reset asks), counted in the same
        storage: one hit on each (rule, key, items) only if every one still has room."""
        return self._counters.take(checks, session)

    def attempt(self, source_address: str, session: Session | None = None) -> bool:
        """A request for a callback arrives from an address (valid or not, it counts)."""
        return self._allow(_from_source(source_address), session)

    def owner_call(self, profile_id: int, e164: str, session: Session | None = None) -> bool:
        """A request would ring an owner: count it against every target-side limit."""
        return self._allow(
            [
                ("per_number", e164),
                ("per_block", number_block(e164)),
                ("per_profile", str(profile_id)),
                ("platform", "all"),
            ],
            session,
        )

    def attempt_on_page(
        self, source_address: str, profile_id: int, session: Session | None = None
    ) -> PagePost | None:
        """`attempt`, then (only if it is allowed) a post to the page, counted in one round:
        whether the page was already busy before it (the adaptive image check), and whether
        its posts are now far above normal (a spike: the page then asks everyone for a CAPTCHA
        for a while and its owner is told). None when the source is over its limits."""
        source = _from_source(source_address)
        posts = self._checks([(rule, str(profile_id)) for rule in PAGE_POST_RULES])
        counted = self._counters.take_then_hit(self._checks(source), posts, session)
        if counted is None:
            self._refused(source, session)
            return None
        had_room, normal = counted
        return PagePost(busy=not had_room, spike=not normal)

    def message(self, source_address: str, profile_id: int, session: Session | None = None) -> bool:
        """A visitor leaves a message: it counts as an attempt from its source, and against the
        page's own limit under a key of its own, so messages never use up the owner's calls."""
        return self._allow(
            [*_from_source(source_address), ("per_profile", f"message:{profile_id}")], session
        )

    def page_is_busy(self, profile_id: int, session: Session | None = None) -> bool:
        """True while a page sees more posts than usual: the image check then switches on."""
        rule = "captcha_auto_on"
        return not self._counters.has_room(rule, str(profile_id), self._rules[rule], session)

    def _over(self, rule: str, key: str, session: Session | None) -> bool:
        return not self._counters.has_room(rule, key, self._rules[rule], session)

    def login_source(self, source_address: str, session: Session | None = None) -> bool:
        """A login attempt from an address (every one counts); False when it has made too many."""
        return self._allow([("login_per_source", source_address)], session)

    def login_pressure(
        self, account: str, source_address: str, session: Session | None = None
    ) -> tuple[bool, bool]:
        """(this network failed too often for the account, the account is under attack)."""
        account = account.strip().lower()
        network = source_network(source_address)
        return (
            self._over("login_per_account_network", f"{account}|{network}", session),
            self._over("login_per_account", account, session),
        )

    def login_failed(
        self, account: str, source_address: str, session: Session | None = None
    ) -> None:
        """A wrong password (or CAPTCHA) for an account: counted per network and in total."""
        account = account.strip().lower()
        network = source_network(source_address)
        for rule, key in (
            ("login_per_account_network", f"{account}|{network}"),
            ("login_per_account", account),
        ):
            self._counters.hit(rule, key, self._rules[rule], session)
