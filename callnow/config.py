"""Settings: defaults, then a TOML file, then `CALLNOW_*` environment variables.

Nested sections are addressed in the environment with a double underscore, for example
`CALLNOW_WEB__PORT=8080` or `CALLNOW_TRUNK__PASSWORD=secret`. `Settings.load(path)` reads the
TOML file at `path` (`--config` on the command line), or the one `CALLNOW_CONFIG` names; without
one, defaults apply. `Settings(...)` alone reads no file: defaults, environment, then its keywords.
"""

from __future__ import annotations

import os
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

# Hosts that mean "every address": a port bound there collides with the same port on any host.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def _same_host(a: str, b: str) -> bool:
    return a == b or a in _WILDCARD_HOSTS or b in _WILDCARD_HOSTS


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # The address visitors use; printed URLs and the owner's share links are built from it.
    public_base_url: str = "http://127.0.0.1:8000"
    # Signs session cookies. Generated into the data directory on first start when empty.
    secret_key: str = ""
    max_body_bytes: int = Field(16_384, ge=1024, le=10_000_000)
    max_query_bytes: int = Field(2_048, ge=256, le=65_536)
    # Addresses of reverse proxies whose X-Forwarded-For may be believed; none by default.
    trusted_proxies: list[str] = []
    # Threads that run blocking route work (database sessions); each holds at most one pooled
    # connection, and the web's pool is sized from this so a thread never waits for a connection.
    worker_threads: int = Field(32, ge=4, le=512)
    # Public-page requests (`/callnow...`) served at once; more wait up to `public_queue_wait_s`
    # and are then answered 503 with Retry-After, so a flood cannot starve health and the portal.
    public_max_in_flight: int = Field(12, ge=1, le=1024)
    public_queue_wait_s: float = Field(2.0, ge=0.0, le=30.0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"'{network}' is not an IP address or network") from exc
        return value


class SipSettings(BaseModel):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(5070, ge=1, le=65535)
    # Where the owner's extension is reached; `{internal}` is the extension's internal number.
    owner_uri_template: str = "sip:{internal}@127.0.0.1:5080"
    owner_ring_timeout_s: int = Field(30, ge=5, le=300)
    requester_ring_timeout_s: int = Field(45, ge=5, le=300)
    max_call_duration_s: int = Field(3600, ge=1, le=86_400)

    @field_validator("owner_uri_template")
    @classmethod
    def _owner_template_has_internal(cls, value: str) -> str:
        if "{internal}" not in value:
            raise ValueError("owner_uri_template must contain {internal}")
        return value


class TrunkSettings(BaseModel):
    # `{e164}` (+61290375678), `{national}` (0290375678) or `{digits}` (61290375678).
    uri_template: str = "sip:{e164}@127.0.0.1:5090"
    username: str = ""
    password: str = ""

    @field_validator("uri_template")
    @classmethod
    def _trunk_template_has_number(cls, value: str) -> str:
        if not any(p in value for p in ("{e164}", "{national}", "{digits}")):
            raise ValueError("trunk uri_template must contain {e164}, {national} or {digits}")
        return value


class RtpengineSettings(BaseModel):
    # `spawn`: `callnow serve` starts a private rtpengine; `external`: use the one at ng_host.
    # There is no "off": every callback plays prompts and bridges media through rtpengine.
    mode: Literal["spawn", "external"] = "spawn"
    ng_host: str = "127.0.0.1"
    ng_port: int = Field(22230, ge=1, le=65535)
    dtmf_log_port: int = Field(22299, ge=1, le=65535)
    port_min: int = Field(35000, ge=1024, le=65535)
    port_max: int = Field(35999, ge=1024, le=65535)
    timeout_s: float = Field(1.0, gt=0, le=30)
    # Worker threads of a spawned rtpengine (control and media). Its defaults starve the control
    # socket under load: prompts (`play media`) queue behind media work and calls time out.
    num_threads: int = Field(4, ge=1, le=64)
    media_num_threads: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _ports_fit(self) -> Self:
        if self.port_min > self.port_max:
            raise ValueError(f"port_min {self.port_min} is above port_max {self.port_max}")
        return self


class EngineSettings(BaseModel):
    # `callnow serve` runs the call engine beside the web; off for a web-only process.
    enabled: bool = True
    # Where `callnow serve` runs the engine: `shared` in the web's process, `own` in a child
    # process it starts, watches and restarts. `auto`: shared on SQLite (the embedded default,
    # one process), own on PostgreSQL, where the two would otherwise queue for one GIL.
    process: Literal["auto", "shared", "own"] = "auto"
    # Unique per engine process; empty means host name and process id.
    engine_id: str = ""
    # A dead engine's queued work is taken over after this long (leases renew every third).
    lease_s: float = Field(30, ge=3, le=600)
    # Fallback polling when no wake-up arrives (LISTEN/NOTIFY or in-process).
    poll_interval_s: float = Field(0.5, gt=0, le=30)
    max_concurrent_calls: int = Field(200, ge=1, le=10_000)
    # Callbacks at once per extension and per tenant (call-flooding an owner is abuse too).
    max_calls_per_extension: int = Field(1, ge=1, le=10_000)
    max_calls_per_tenant: int = Field(20, ge=1, le=10_000)


class AbuseSettings(BaseModel):
    """Limits are `limits` strings: several windows separated by `;`, e.g. "10/minute;50/hour".

    Source limits count every attempt; the others count only requests that would ring an owner.
    """

    # `memory://` for one process; `redis://127.0.0.1:6379` when several processes share the load.
    storage_url: str = "memory://"
    per_source: RateLimit = "10/minute;60/hour"
    per_network: RateLimit = "30/minute;300/hour"  # /24 for IPv4, /64 for IPv6
    per_profile: RateLimit = "30/hour;200/day"
    per_number: RateLimit = "3/day"  # owner calls per destination number, platform-wide
    # Per 1,000-number block (all digits but the last three).
    per_block: RateLimit = "10/hour;40/day"
    platform: RateLimit = "600/minute"
    login_per_account: RateLimit = "5/minute;20/hour"
    login_per_source: RateLimit = "20/minute;100/hour"
    # Known fraud ranges (E.164 digits without +) the platform never calls, and exceptions.
    blocked_prefixes: list[str] = []
    allowed_prefixes: list[str] = []
    captcha_ttl_s: int = Field(300, ge=30, le=3600)
    # Above this many form posts, a page asks for the image check even if its owner turned it off.
    captcha_auto_on: RateLimit = "20/10 minutes"
    # Far above normal: the page pauses itself (answers like an unknown page) and the owner is told.
    spike_pause: RateLimit = "100/10 minutes"
    pause_minutes: int = Field(60, ge=1, le=7 * 24 * 60)

    @field_validator("blocked_prefixes", "allowed_prefixes")
    @classmethod
    def _valid_prefixes(cls, value: list[str]) -> list[str]:
        from callnow.domain.destination_policy import normalise_prefix_list

        return list(normalise_prefix_list(value))


class BillingSettings(BaseModel):
    currency_code: str = Field("AUD", pattern=r"^[A-Z]{3}$")
    # Digits after the decimal point of the currency (2 for cents).
    minor_unit_exponent: int = Field(2, ge=0, le=4)
    # GST in Australia; a decimal string so it is exact ("0.10", "0.15", "0").
    tax_rate: str = Field("0.10", pattern=r"^(0(\.\d{1,6})?|1(\.0{1,6})?)$")
    # A local call's flat price in minor units, before tax.
    local_flat_minor: int = Field(12, ge=0, le=100_000)
    # The owner's own leg (CallNow ringing their extension), in minor units before tax: a price
    # per answered leg and one per started minute of its answered time. Both 0: free, no charge.
    owner_leg_flat_minor: int = Field(0, ge=0, le=100_000)
    owner_leg_per_minute_minor: int = Field(0, ge=0, le=100_000)


class RequestPolicySettings(BaseModel):
    # How long the same number may not trigger another call after the owner declined.
    decline_cooldown_s: int = Field(3600, ge=0)


# The TOML file `Settings.load` is reading, seen by `settings_customise_sources` (a class method
# that gets no arguments of its own); set only for the duration of one load.
_loading_file: ContextVar[Path | None] = ContextVar("callnow_settings_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLNOW_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("var")
    # Empty means an SQLite file in data_dir. PostgreSQL: postgresql+psycopg://user@host/db
    database_url: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    default_region: str = Field("AU", min_length=2, max_length=2)
    default_timezone: str = "Australia/Sydney"
    # Create the demo tenant, owner and `john_doe` profile on first start.
    demo_data: bool = True

    web: WebSettings = WebSettings()
    sip: SipSettings = SipSettings()
    trunk: TrunkSettings = TrunkSettings()
    rtpengine: RtpengineSettings = RtpengineSettings()
    requests: RequestPolicySettings = RequestPolicySettings()
    abuse: AbuseSettings = AbuseSettings()
    engine: EngineSettings = EngineSettings()
    billing: BillingSettings = BillingSettings()

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

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callnow.sqlite3').resolve()}"

    @property
    def engine_in_own_process(self) -> bool:
        if self.engine.process == "auto":
            return self.effective_database_url.startswith("postgresql")
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
