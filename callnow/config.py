"""Settings: defaults, then a TOML file, then `CALLNOW_*` environment variables.

Nested sections are addressed in the environment with a double underscore, for example
`CALLNOW_WEB__PORT=8080` or `CALLNOW_TRUNK__PASSWORD=secret`. `Settings.load(path)` reads the
TOML file at `path` (`--config` on the command line), or the one `CALLNOW_CONFIG` names; without
one, defaults apply. `Settings(...)` alone reads no file: defaults, environment, then its keywords.
"""

from __future__ import annotations

import ipaddress
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        windows = parse_many(value)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a rate limit like '10/minute;50/hour'") from exc
    if any(window.amount < 1 for window in windows):
        raise ValueError(f"'{value}' allows nothing: every window needs at least 1")
    return value


# A `limits` string: one window ("20/10 minutes") or several separated by `;`, each at least 1.
RateLimit = Annotated[str, AfterValidator(_rate_limit)]


def _ip_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not an IP address or network") from exc
    return value


IpNetwork = Annotated[str, AfterValidator(_ip_network)]

# Hosts that mean "every address": a port bound there collides with the same port on any host.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def _same_host(a: str, b: str) -> bool:
    return a == b or a in _WILDCARD_HOSTS or b in _WILDCARD_HOSTS


class WebSettings(BaseModel):
    """The HTTP server: public pages, owner portal, admin and Call API."""

    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port the HTTP server listens on.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="The address visitors use; printed URLs and the owner's share links are "
        "built from it. `https://` makes cookies `Secure`.",
    )
    secret_key: str = Field(
        "",
        description="Signs session cookies and form tokens. When empty, one is generated into "
        "`data_dir/secret_key` on first start.",
    )
    max_body_bytes: int = Field(
        16_384, ge=1024, le=10_000_000, description="Larger request bodies are answered 413."
    )
    max_query_bytes: int = Field(
        2_048, ge=256, le=65_536, description="Longer query strings are answered 414."
    )
    trusted_proxies: list[IpNetwork] = Field(
        [],
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is "
        "believed; none by default.",
    )
    worker_threads: int = Field(
        32,
        ge=4,
        le=512,
        description="Threads that run blocking route work (database sessions); each holds at "
        "most one pooled connection, and the web's pool is sized from this so a thread never "
        "waits for a connection.",
    )
    public_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads that run the public pages' work (a visit, a form post) at once, "
        "apart from `worker_threads`; 0: 2 on SQLite, 8 on PostgreSQL. On SQLite a post "
        "holds the one writer's turn for most of its work, and more threads only take the "
        "interpreter lock from its holder (docs/benchmarks.md); on PostgreSQL more threads "
        "overlap the database's round trips.",
    )
    public_batch: int = Field(
        0,
        ge=0,
        le=64,
        description="Public-page requests that arrive together and share one transaction "
        "(one commit, answered once it is done); 0: 16 on SQLite, 1 on PostgreSQL. SQLite "
        "takes writers one at a time anyway, so a shared commit saves each post its own; on "
        "PostgreSQL posts of different pages sharing a transaction could lock each other's "
        "rows in opposite orders.",
    )
    public_max_in_flight: int = Field(
        12,
        ge=1,
        le=1024,
        description="Public-page requests (`/callnow...`) served at once; more wait up to "
        "`public_queue_wait_s` and are then answered 503 with Retry-After, so a flood cannot "
        "starve health and the portal.",
    )
    public_queue_wait_s: float = Field(
        2.0,
        ge=0.0,
        le=30.0,
        description="How long a public-page request waits for a free slot before it is "
        "answered 503.",
    )
    session_idle_s: int = Field(
        2 * 3600,
        ge=300,
        le=30 * 86400,
        description="A portal or admin session unused this long ends; the user logs in again.",
    )
    session_absolute_s: int = Field(
        12 * 3600,
        ge=600,
        le=90 * 86400,
        description="A portal or admin session ends this long after its login, however busy.",
    )


class SipSettings(BaseModel):
    """The engine's SIP user agent."""

    listen_host: str = Field(
        "127.0.0.1", description="Address of the engine's SIP UDP socket (not a wildcard)."
    )
    listen_port: int = Field(5070, ge=1, le=65535, description="UDP port of the SIP socket.")
    owner_uri_template: str = Field(
        "sip:{internal}@127.0.0.1:5080",
        description="Where the owner's extension is rung; `{internal}` is the extension's "
        "internal number.",
    )
    owner_ring_timeout_s: int = Field(
        30, ge=5, le=300, description="How long the owner's extension rings before giving up."
    )
    visitor_ring_timeout_s: int = Field(
        45, ge=5, le=300, description="How long the visitor's phone rings before giving up."
    )
    max_call_duration_s: int = Field(
        3600, ge=1, le=86_400, description="A bridged call is ended cleanly after this long."
    )
    owner_prompt_plays: int = Field(
        2,
        ge=1,
        le=5,
        description="How often the owner hears the request before a silent answer counts as "
        "not answered. Short, so a voicemail box that picks up does not record it over and "
        "over.",
    )
    owner_divert_unanswered: bool = Field(
        True,
        description="Treat the owner's call as not answered when the PBX shows it diverted "
        "it (a 181 Call Is Being Forwarded, or an answer with a Diversion header or "
        "History-Info causes): hang up at once, before any prompt can reach a voicemail box; "
        "the request ends `owner_unreachable`, reason `owner_voicemail`. Turn off for a PBX "
        "that diverts to a colleague who may accept.",
    )
    owner_ringback: bool = Field(
        True,
        description="Play a ringback tone (the cadence of `default_region`) to the owner while "
        "the visitor's phone rings, unless the carrier sends its own early media.",
    )
    owner_digit_wait_s: float = Field(
        4,
        ge=1,
        le=30,
        description="Silence after each play of the request before it is played again (or, "
        "after the last play, the owner's phone is released).",
    )
    trusted_sources: list[IpNetwork] = Field(
        [],
        description="IP addresses or networks (the PBX, the trunk) whose requests outside the "
        "calls we placed are handled in full (an OPTIONS health check, a stray INVITE's 403 "
        "until acknowledged) and that the source rate limit does not count. "
        "Requests inside our calls are always handled, from anywhere.",
    )
    untrusted_requests: Literal["answer_once", "drop"] = Field(
        "answer_once",
        description="Requests outside our calls from any other address: `answer_once` sends "
        "one reply without a transaction (never retransmitted; a repeat of the request gets "
        "nothing), `drop` sends nothing, so a scanner learns nothing and a forged source "
        "address gets nothing reflected to it.",
    )
    source_rate_per_s: float = Field(
        10.0,
        ge=0,
        le=100_000,
        description="Requests outside our calls one untrusted address may send a second; more "
        "get nothing. 0 turns the limit off.",
    )
    source_burst: int = Field(
        20, ge=1, le=1_000_000, description="How many such requests a burst may hold."
    )

    @field_validator("owner_uri_template")
    @classmethod
    def _owner_template_has_internal(cls, value: str) -> str:
        if "{internal}" not in value:
            raise ValueError("owner_uri_template must contain {internal}")
        return value


# Codecs rtpengine 10.5 (Debian) transcodes between; the names are its ng `codec` names.
TRUNK_CODECS = ("PCMA", "PCMU", "G722")
TrunkCodec = Literal["PCMA", "PCMU", "G722"]


_HOST_PORT = r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5})?$"


def _in_memory(database_url: str) -> bool:
    """An SQLite database in one process's memory: no file another process could open."""
    if not database_url.startswith("sqlite"):
        return False
    rest = database_url.partition("://")[2]
    path = rest.removeprefix("/").partition("?")[0]
    return path in ("", ":memory:") or "mode=memory" in rest


def _split_host_port(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    host, port = value.rsplit(":", 1)
    return host, int(port)


class TrunkSettings(BaseModel):
    """The carrier trunk that reaches visitors' numbers."""

    name: str = Field(
        "main",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Short name of the trunk, shown in health and logs (lower-case letters, "
        "digits, `-`, `_`; at most 32).",
    )
    prefixes: list[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,14}$")]] = Field(
        [],
        max_length=200,
        description="E.164 digit prefixes (country code first, no +: `61`, `614`) of the "
        "numbers this trunk may dial. Empty: every number.",
    )
    setup_timeout_s: float = Field(
        5.0,
        ge=1,
        le=60,
        description="An INVITE with no response at all (not even 100 Trying) this long counts "
        "as the trunk being down: the next trunk is tried.",
    )
    registration: bool = Field(
        False,
        description="Keep an account registered with the trunk's registrar (REGISTER with "
        "digest auth, refreshed before expiry, retried with backoff); its state shows in "
        "`/api/v1/health`.",
    )
    registrar: str = Field(
        "",
        max_length=260,
        pattern=_HOST_PORT,
        description="`host:port` of the registrar. Empty: the outbound proxy, else the "
        "template's host and port.",
    )
    register_user: str = Field(
        "",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.!~*'()&=+$,;?/%+-]*$",
        description="User part of the registered address of record. Empty: `username`.",
    )
    register_domain: str = Field(
        "",
        max_length=253,
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$",
        description="Host part of the address of record and the REGISTER's request URI. "
        "Empty: the registrar's host.",
    )
    register_expires_s: int = Field(
        600, ge=60, le=86_400, description="Expiry asked for; refreshed at 80 % of what is granted."
    )
    register_retry_max_s: int = Field(
        300,
        ge=5,
        le=3600,
        description="Longest wait between REGISTER attempts after failures (the wait starts "
        "at 2 s and doubles).",
    )
    uri_template: str = Field(
        "sip:{e164}@127.0.0.1:5090",
        description="How a visitor's number is dialled: `{e164}` (+61290375678), `{national}` "
        "(0290375678) or `{digits}` (61290375678).",
    )
    username: str = Field("", description="Digest user name for 401/407 challenges.")
    password: str = Field("", description="Digest password for 401/407 challenges.")
    from_user: str = Field(
        "",
        max_length=32,
        pattern=r"^(\+?[0-9]{1,31})?$",
        description="User part of the trunk INVITE's From (digits, optional leading +), for "
        "trunks that want their account number there; the caller ID then travels in "
        "P-Asserted-Identity. Empty: the caller ID.",
    )
    from_domain: str = Field(
        "",
        max_length=253,
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$",
        description="Host part of From and P-Asserted-Identity (trunks often want their own "
        "domain there). Empty: the engine's SIP address.",
    )
    display_name: str = Field(
        "",
        max_length=64,
        pattern=r"^[^\"\\\x00-\x1f\x7f]*$",
        description="Display name of the trunk INVITE's From and P-Asserted-Identity (no "
        "quotes, backslashes or control characters). Empty: none.",
    )
    caller_id_format: Literal["e164", "e164_no_plus", "national"] = Field(
        "e164",
        description="How the extension's external number is shown to the carrier: `e164` "
        "(+61299990000), `e164_no_plus` (61299990000) or `national` (0299990000, numbers of "
        "`default_region` only).",
    )
    p_asserted_identity: bool = Field(
        True, description="Send P-Asserted-Identity (RFC 3325) with the caller ID."
    )
    privacy: Literal["none", "id", "header", "user"] = Field(
        "none",
        description="`Privacy` header of the trunk INVITE (RFC 3323/3325): `id` asks the "
        "carrier to withhold the caller ID from the callee; `none` sends no header.",
    )
    outbound_proxy: str = Field(
        "",
        max_length=260,
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5})?$",
        description="`host:port` the trunk INVITEs are sent to (the request URI stays the "
        "template's). Empty: the template's host and port.",
    )
    supported: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.!%*_+`'~-]{1,32}$")]] = Field(
        [],
        max_length=8,
        description="Option tags of the `Supported` header of our INVITEs (RFC 3261 20.37). "
        "Empty sends an empty header: no extension is claimed that the engine does not do.",
    )
    rate_deck: str = Field(
        "",
        max_length=4096,
        description="Path of a CSV with this carrier's prices, in the `callnow billing "
        "import-deck` format (what the platform pays the carrier, not a deck owners are "
        "charged from). Where several trunks may dial a number, those whose deck prices it "
        "are tried first, cheapest first (on a three-minute call), then the others in "
        "configured order. Read when the engine starts. Empty: none.",
    )
    codecs: list[TrunkCodec] = Field(
        ["PCMA", "PCMU"],
        min_length=1,
        max_length=len(TRUNK_CODECS),
        description="Audio codecs offered to the trunk, most preferred first "
        f"({', '.join(TRUNK_CODECS)}); RFC 4733 telephone-event is always added. rtpengine "
        "transcodes when the carrier and the owner's phone settle on different ones.",
    )

    @field_validator("outbound_proxy")
    @classmethod
    def _proxy_port_in_range(cls, value: str) -> str:
        if value and not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError("outbound_proxy port must be 1-65535")
        return value

    @property
    def outbound_proxy_address(self) -> tuple[str, int] | None:
        return _split_host_port(self.outbound_proxy)

    @property
    def registrar_address(self) -> tuple[str, int] | None:
        """Where REGISTERs go: `registrar`, else the outbound proxy, else the template's host
        and port (None when the template's host part cannot be read)."""
        explicit = _split_host_port(self.registrar) or self.outbound_proxy_address
        if explicit is not None:
            return explicit
        match = re.search(r"@([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?", self.uri_template)
        if match is None:
            return None
        return match.group(1), int(match.group(2) or 5060)

    def allows(self, e164: str) -> bool:
        """May this trunk dial `e164` (+ and digits)?"""
        return not self.prefixes or any(e164[1:].startswith(p) for p in self.prefixes)

    @model_validator(mode="after")
    def _registration_complete(self) -> TrunkSettings:
        if self.registration:
            if not (self.register_user or self.username):
                raise ValueError("trunk registration needs register_user or username")
            if self.registrar_address is None:
                raise ValueError("trunk registration needs registrar (host:port)")
            if self.registrar:
                port = int(self.registrar.rsplit(":", 1)[1])
                if not 1 <= port <= 65535:
                    raise ValueError("trunk registrar port must be 1-65535")
        return self

    @field_validator("codecs")
    @classmethod
    def _codecs_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("trunk codecs must not repeat")
        return value

    @field_validator("uri_template")
    @classmethod
    def _trunk_template_has_number(cls, value: str) -> str:
        if not any(p in value for p in ("{e164}", "{national}", "{digits}")):
            raise ValueError("trunk uri_template must contain {e164}, {national} or {digits}")
        return value


class RtpengineSettings(BaseModel):
    """The media relay that plays prompts, hears key presses and bridges the two legs."""

    mode: Literal["spawn", "external"] = Field(
        "spawn",
        description="`spawn`: `callnow serve` starts a private rtpengine; `external`: use the "
        "one at `ng_host`. There is no `off`: every callback needs rtpengine.",
    )
    ng_host: str = Field(
        "127.0.0.1",
        description="Address of rtpengine's ng control socket; also its media interface and "
        "where the engine listens for its DTMF log.",
    )
    ng_port: int = Field(22230, ge=1, le=65535, description="UDP port of the ng control socket.")
    dtmf_log_port: int = Field(
        22299,
        ge=1,
        le=65535,
        description="UDP port on `ng_host` where the engine hears rtpengine's DTMF events.",
    )
    port_min: int = Field(
        35000, ge=1024, le=65535, description="First port of the RTP range (up to `port_max`)."
    )
    port_max: int = Field(35999, ge=1024, le=65535, description="Last port of the RTP range.")
    timeout_s: float = Field(
        1.0, gt=0, le=30, description="How long the engine waits for an ng answer."
    )
    num_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Control threads of a spawned rtpengine. Its own defaults starve the "
        "control socket under load: prompts queue behind media work and calls time out.",
    )
    media_num_threads: int = Field(
        4, ge=1, le=64, description="Media threads of a spawned rtpengine."
    )

    @model_validator(mode="after")
    def _ports_fit(self) -> Self:
        if self.port_min > self.port_max:
            raise ValueError(f"port_min {self.port_min} is above port_max {self.port_max}")
        return self


class EngineSettings(BaseModel):
    """The call engine: claims queued requests and places the calls."""

    enabled: bool = Field(
        True,
        description="`callnow serve` runs the call engine beside the web; `false` for a "
        "web-only process (then `callnow engine` runs elsewhere).",
    )
    process: Literal["auto", "shared", "own"] = Field(
        "auto",
        description="Where `callnow serve` runs the engine: `shared` in the web's process, "
        "`own` in a child process it starts, watches and restarts (woken through a pipe on "
        "SQLite, by NOTIFY on PostgreSQL). `auto`: own, where the two would otherwise queue for "
        "one GIL (shared only for an in-memory SQLite database, which one process alone sees).",
    )
    engine_id: str = Field(
        "", description="Unique per engine process; empty means host name and process id."
    )
    lease_s: float = Field(
        30,
        ge=3,
        le=600,
        description="A dead engine's queued work is taken over after this long (leases renew "
        "every third of it).",
    )
    poll_interval_s: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Fallback polling when no wake-up arrives (LISTEN/NOTIFY or in-process).",
    )
    max_concurrent_calls: int = Field(
        200, ge=1, le=10_000, description="Callbacks this engine runs at once."
    )
    max_calls_per_extension: int = Field(
        1,
        ge=1,
        le=10_000,
        description="Callbacks at once per extension (call-flooding an owner is abuse too).",
    )
    max_calls_per_tenant: int = Field(
        20, ge=1, le=10_000, description="Callbacks at once per tenant."
    )
    owner_busy_hold_s: float = Field(
        30,
        ge=0,
        le=600,
        description="After the owner's phone answered busy (486 or 600), that owner's next "
        "queued callback waits this long before their phone is rung again (queued requests stay "
        "queued meanwhile). 0: ring again at once.",
    )
    drain_s: float = Field(
        300,
        ge=0,
        le=3600,
        description="On SIGTERM the engine stops claiming and lets calls in progress end by "
        "themselves for up to this long (leases renewed), then hangs up what is left; a second "
        "SIGTERM hangs up at once. 0: hang up at once.",
    )


class MetricsSettings(BaseModel):
    """Prometheus metrics, each process on a listener of its own (never the public port)."""

    enabled: bool = Field(False, description="Serve `/metrics` on `host`:`port`.")
    host: str = Field("127.0.0.1", description="Address of the metrics listeners; keep it private.")
    port: int = Field(
        9464, ge=1, le=65535, description="TCP port of the web process's metrics listener."
    )
    engine_port: int = Field(
        9465,
        ge=1,
        le=65535,
        description="TCP port of the engine's metrics listener (`callnow engine`, or the engine "
        "child of `callnow serve`); each engine process on a host needs its own.",
    )

    @model_validator(mode="after")
    def _ports_differ(self) -> Self:
        if self.enabled and self.port == self.engine_port:
            raise ValueError("metrics.port and metrics.engine_port must differ")
        return self


# Every limit `services/throttle.py` counts, by its setting name in `AbuseSettings`.
LIMIT_RULES = (
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
    "spike_captcha",
)


class AbuseSettings(BaseModel):
    """Limits are `limits` strings: several windows separated by `;`, e.g. "10/minute;50/hour".

    Source limits count every attempt; the others count only requests that would ring an owner.
    """

    storage_url: str = Field(
        "database://",
        description="Where limit counters live: `database://` in the service's own database "
        "(they survive a restart); `redis://127.0.0.1:6379` when several web processes share "
        "the load; `memory://` for one process that may forget them on restart.",
    )
    per_source: RateLimit = Field(
        "10/minute;60/hour", description="Requests per visitor address (every attempt counts)."
    )
    per_network: RateLimit = Field(
        "30/minute;300/hour",
        description="Requests per network: /24 for IPv4, /64 for IPv6 (every attempt counts).",
    )
    per_profile: RateLimit = Field("30/hour;200/day", description="Owner calls per CallNow page.")
    per_number: RateLimit = Field(
        "3/day", description="Owner calls per destination number, platform-wide."
    )
    per_block: RateLimit = Field(
        "10/hour;40/day",
        description="Owner calls per 1,000-number block (all digits but the last three).",
    )
    platform: RateLimit = Field("600/minute", description="Owner calls on the whole platform.")
    login_per_account: RateLimit = Field(
        "10/15 minutes;50/day",
        description="Failed logins per account from all networks together. Above it the account "
        "is under attack: only networks its user has logged in from before may try, after a "
        "CAPTCHA; others are answered 429.",
    )
    login_per_account_network: RateLimit = Field(
        "5/minute;20/hour",
        description="Failed logins per account from one network (/24 or /64); above it that "
        "network is answered 429 for the account.",
    )
    login_per_source: RateLimit = Field(
        "20/minute;100/hour", description="Login attempts per visitor address (every one counts)."
    )
    blocked_prefixes: list[str] = Field(
        [],
        description="Known fraud ranges (E.164 digits without +) the platform never calls.",
    )
    allowed_prefixes: list[str] = Field(
        [], description="Exceptions inside `blocked_prefixes` that may be called."
    )
    captcha_ttl_s: int = Field(
        300, ge=30, le=3600, description="How long an image check stays valid."
    )
    captcha_auto_on: RateLimit = Field(
        "20/10 minutes",
        description="Above this many form posts, a page asks for the image check even if its "
        "owner turned it off.",
    )
    spike_captcha: RateLimit = Field(
        "100/10 minutes",
        description="Far above normal: the page asks every visitor for the image check for "
        "`spike_captcha_minutes` and the owner is told. It stays reachable; pausing a page is "
        "the owner's or an admin's choice.",
    )
    spike_captcha_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="How long a spike keeps the image check on."
    )

    @field_validator("blocked_prefixes", "allowed_prefixes")
    @classmethod
    def _valid_prefixes(cls, value: list[str]) -> list[str]:
        from callnow.domain.destination_policy import normalise_prefix_list

        return list(normalise_prefix_list(value))


class BillingSettings(BaseModel):
    """The currency, tax and the built-in prices."""

    currency_code: str = Field(
        "AUD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of every price and charge."
    )
    minor_unit_exponent: int = Field(
        2, ge=0, le=4, description="Digits after the decimal point of the currency (2 for cents)."
    )
    tax_rate: str = Field(
        "0.10",
        pattern=r"^(0(\.\d{1,6})?|1(\.0{1,6})?)$",
        description="Tax on every charge (GST in Australia), a decimal string so it is exact "
        '("0.10", "0.15", "0"); rounded half-up once per charge.',
    )
    local_flat_minor: int = Field(
        12, ge=0, le=100_000, description="A local call's flat price in minor units, before tax."
    )
    owner_leg_flat_minor: int = Field(
        0,
        ge=0,
        le=100_000,
        description="The owner's own leg (CallNow ringing their extension): a price per answered "
        "leg in minor units before tax. With `owner_leg_per_minute_minor` both 0: free.",
    )
    owner_leg_per_minute_minor: int = Field(
        0,
        ge=0,
        le=100_000,
        description="The owner's own leg: a price per started minute of its answered time, in "
        "minor units before tax.",
    )


class RequestPolicySettings(BaseModel):
    """Rules every callback request follows."""

    decline_cooldown_s: int = Field(
        3600,
        ge=0,
        description="How long the same number may not trigger another call after the owner "
        "declined.",
    )


class MailSettings(BaseModel):
    """Owner e-mail (notices and password resets) through an SMTP server."""

    enabled: bool = Field(
        False,
        description="Send e-mail. Off: notices still wait in the outbox and go out once it is on.",
    )
    smtp_host: str = Field("127.0.0.1", min_length=1, max_length=253, description="SMTP server.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS).")
    security: Literal["none", "starttls", "tls"] = Field(
        "starttls",
        description="`starttls` upgrades a plain connection (refusing a server that cannot); "
        "`tls` is implicit TLS from the first byte; `none` only for a server on this host.",
    )
    ca_file: str = Field(
        "",
        max_length=4096,
        description="A PEM file of the CA certificates to trust for the SMTP server instead of "
        "the system's (a private mail server); empty: the system's.",
    )
    username: str = Field("", max_length=254, description="SMTP login; empty: no AUTH.")
    password: str = Field("", max_length=256, description="SMTP password.")
    from_address: str = Field(
        "callnow@localhost",
        pattern=r"^[^@\s<>]{1,64}@[^@\s<>]{1,253}$",
        description="The From address; its domain also ends each Message-ID.",
    )
    timeout_s: float = Field(20.0, gt=0, le=300, description="One SMTP conversation at most.")
    poll_interval_s: float = Field(
        2.0, gt=0, le=300, description="How often the sender looks for mail that is due."
    )
    lease_s: int = Field(
        120,
        ge=5,
        le=3600,
        description="How long a sender holds the mail it is sending; mail a crashed sender held "
        "goes out again (same Message-ID) after this.",
    )
    digest_burst: int = Field(
        5,
        ge=1,
        le=1000,
        description="At most this many separate mails to one owner within `digest_window_s`; "
        "beyond that, what is due goes out as one digest.",
    )
    digest_window_s: int = Field(600, ge=1, le=86_400, description="The digest's window.")
    digest_gap_s: int = Field(
        120, ge=0, le=86_400, description="At most one digest per owner this often."
    )
    answer_link_s: int = Field(
        600,
        ge=60,
        le=86_400,
        description="How long a mailed Accept/Decline link works (never past the request's own "
        "web confirmation timeout).",
    )
    reset_token_s: int = Field(
        1800, ge=300, le=86_400, description="How long a password reset link works."
    )
    reset_per_account: RateLimit = Field(
        "3/hour", description="Password reset mails one account may be sent."
    )
    reset_per_source: RateLimit = Field(
        "10/hour", description="Password reset asks from one network."
    )


# The TOML file `Settings.load` is reading, seen by `settings_customise_sources` (a class method
# that gets no arguments of its own); set only for the duration of one load.
_loading_file: ContextVar[Path | None] = ContextVar("callnow_settings_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLNOW_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(
        Path("var"), description="The SQLite file, the generated secret key and the prompt cache."
    )
    database_url: str = Field(
        "",
        description="Empty means an SQLite file in `data_dir`; PostgreSQL: "
        "`postgresql+psycopg://user@host/db`.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="The least severe log records written."
    )
    log_format: Literal["console", "json"] = Field(
        "console", description="`json` for log collectors."
    )
    default_region: str = Field(
        "AU",
        min_length=2,
        max_length=2,
        description="Country of national numbers, for new tenants.",
    )
    default_timezone: str = Field(
        "Australia/Sydney",
        description="IANA time zone for new tenants and the platform's days (re-rating).",
    )
    demo_data: bool = Field(
        True, description="Create the demo tenant, owner and `john_doe` page on first start."
    )

    web: WebSettings = Field(WebSettings(), description=WebSettings.__doc__)
    sip: SipSettings = Field(SipSettings(), description=SipSettings.__doc__)
    trunk: TrunkSettings = Field(TrunkSettings(), description=TrunkSettings.__doc__)
    trunks: list[TrunkSettings] = Field(
        [],
        max_length=16,
        description="Further trunks (`[[trunks]]`, same keys as `[trunk]`). A visitor's number "
        "is dialled through the first trunk whose `prefixes` allow it, `[trunk]` first and then "
        "these in order (trunks with a `rate_deck` that prices the number before the others, "
        "cheapest first); on a 5xx or no response the next allowed trunk is tried (never on "
        "busy, decline or no answer: those are the visitor's answer).",
    )
    rtpengine: RtpengineSettings = Field(RtpengineSettings(), description=RtpengineSettings.__doc__)
    requests: RequestPolicySettings = Field(
        RequestPolicySettings(), description=RequestPolicySettings.__doc__
    )
    abuse: AbuseSettings = Field(AbuseSettings(), description="Limits against abuse.")
    engine: EngineSettings = Field(EngineSettings(), description=EngineSettings.__doc__)
    billing: BillingSettings = Field(BillingSettings(), description=BillingSettings.__doc__)
    metrics: MetricsSettings = Field(MetricsSettings(), description=MetricsSettings.__doc__)
    mail: MailSettings = Field(MailSettings(), description=MailSettings.__doc__)

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"'{value}' is not an IANA time zone like Australia/Sydney") from exc
        return value

    @model_validator(mode="after")
    def _udp_ports_differ(self) -> Self:
        # The engine binds the SIP port and the DTMF log port; rtpengine binds the ng port.
        # All are UDP (the web's TCP port cannot collide with them).
        udp = [
            ("sip.listen_port", self.sip.listen_host, self.sip.listen_port),
            ("rtpengine.ng_port", self.rtpengine.ng_host, self.rtpengine.ng_port),
            ("rtpengine.dtmf_log_port", self.rtpengine.ng_host, self.rtpengine.dtmf_log_port),
        ]
        for index, (name, host, port) in enumerate(udp):
            for other, other_host, other_port in udp[index + 1 :]:
                if port == other_port and _same_host(host, other_host):
                    raise ValueError(f"{name} and {other} are both {port} on {host}")
        return self

    @model_validator(mode="after")
    def _trunk_names_differ(self) -> Self:
        names = [t.name for t in self.all_trunks]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two trunks are named {name!r}; give each its own name")
        return self

    @property
    def all_trunks(self) -> list[TrunkSettings]:
        """`[trunk]` and then `[[trunks]]`, in the order they are tried."""
        return [self.trunk, *self.trunks]

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callnow.sqlite3').resolve()}"

    @property
    def public_threads(self) -> int:
        """`web.public_threads`, or its default for the database in use."""
        if self.web.public_threads:
            return self.web.public_threads
        return 2 if self.effective_database_url.startswith("sqlite") else 8

    @property
    def public_batch(self) -> int:
        """`web.public_batch`, or its default for the database in use."""
        if self.web.public_batch:
            return self.web.public_batch
        return 16 if self.effective_database_url.startswith("sqlite") else 1

    @property
    def engine_in_own_process(self) -> bool:
        if self.engine.process == "auto":
            return not _in_memory(self.effective_database_url)
        return self.engine.process == "own"

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Defaults, then the TOML file at `path` (or named by CALLNOW_CONFIG), then CALLNOW_*.

        Raises FileNotFoundError for a file that is not there, and pydantic's ValidationError
        (naming the key) for a value that is wrong.
        """
        if path is None and os.environ.get("CALLNOW_CONFIG"):
            path = Path(os.environ["CALLNOW_CONFIG"])
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"the settings file {path} is not a file")
        token = _loading_file.set(path)
        try:
            return cls()
        finally:
            _loading_file.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: keywords, then the environment, then the file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _loading_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
