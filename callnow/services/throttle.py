"""Rate limits, each counted separately (OWASP: separate counters per source and per target).

Attempts are counted per source address and per source network, whatever they lead to. Requests
that would ring an owner are also counted per profile, per destination number across the whole
platform (call-bombing), per 1,000-number block and for the platform as a whole. A refusal does
not say which limit fired.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from callnow.config import AbuseSettings


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


@dataclass(frozen=True)
class _Rule:
    name: str
    items: list[RateLimitItem]


class Throttle:
    def __init__(self, settings: AbuseSettings) -> None:
        self._limiter = MovingWindowRateLimiter(counters_at(settings.storage_url))
        self._rules = {
            name: _Rule(name, parse_many(getattr(settings, name)))
            for name in (
                "per_source",
                "per_network",
                "per_profile",
                "per_number",
                "per_block",
                "platform",
                "login_per_account",
                "login_per_account_network",
                "login_per_source",
                "captcha_auto_on",
                "spike_pause",
            )
        }

    def _allow(self, checks: list[tuple[str, str]]) -> bool:
        """Count one hit on each (rule, key) only if every one of them still has room."""
        for rule_name, key in checks:
            for item in self._rules[rule_name].items:
                if not self._limiter.test(item, rule_name, key):
                    return False
        for rule_name, key in checks:
            for item in self._rules[rule_name].items:
                self._limiter.hit(item, rule_name, key)
        return True

    def attempt(self, source_address: str) -> bool:
        """A request for a callback arrives from an address (valid or not, it counts)."""
        return self._allow(
            [("per_source", source_address), ("per_network", source_network(source_address))]
        )

    def owner_call(self, profile_id: int, e164: str) -> bool:
        """A request would ring an owner: count it against every target-side limit."""
        return self._allow(
            [
                ("per_number", e164),
                ("per_block", number_block(e164)),
                ("per_profile", str(profile_id)),
                ("platform", "all"),
            ]
        )

    def page_post(self, profile_id: int) -> bool:
        """Note a form post to a page; False when it is one too many and the page should pause.

        The same posts feed the adaptive image check (`page_is_busy`).
        """
        for item in self._rules["captcha_auto_on"].items:
            self._limiter.hit(item, "captcha_auto_on", str(profile_id))
        return all(
            self._limiter.hit(item, "spike_pause", str(profile_id))
            for item in self._rules["spike_pause"].items
        )

    def page_is_busy(self, profile_id: int) -> bool:
        """True while a page sees more posts than usual: the image check then switches on."""
        return not all(
            self._limiter.test(item, "captcha_auto_on", str(profile_id))
            for item in self._rules["captcha_auto_on"].items
        )

    def _over(self, rule_name: str, key: str) -> bool:
        return not all(
            self._limiter.test(item, rule_name, key) for item in self._rules[rule_name].items
        )

    def login_source(self, source_address: str) -> bool:
        """A login attempt from an address (every one counts); False when it has made too many."""
        return self._allow([("login_per_source", source_address)])

    def login_pressure(self, account: str, source_address: str) -> tuple[bool, bool]:
        """(this network failed too often for the account, the account is under attack)."""
        account = account.strip().lower()
        network = source_network(source_address)
        return (
            self._over("login_per_account_network", f"{account}|{network}"),
            self._over("login_per_account", account),
        )

    def login_failed(self, account: str, source_address: str) -> None:
        """A wrong password (or CAPTCHA) for an account: counted per network and in total."""
        account = account.strip().lower()
        network = source_network(source_address)
        for rule_name, key in (
            ("login_per_account_network", f"{account}|{network}"),
            ("login_per_account", account),
        ):
            for item in self._rules[rule_name].items:
                self._limiter.hit(item, rule_name, key)
