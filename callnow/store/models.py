"""Tables. SQLite by default, PostgreSQL in production; nothing outside `store/` writes SQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    exists,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    product_line: Mapped[str] = mapped_column(String(8), default="pbx")
    region: Mapped[str] = mapped_column(String(2), default="AU")
    timezone: Mapped[str] = mapped_column(String(64), default="Australia/Sydney")
    call_api_access: Mapped[bool] = mapped_column(Boolean, default=False)
    # Destination policy: countries beyond the tenant's own region, and its own prefix lists.
    extra_countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Set by the provider (its API): every page of the tenant is hidden until resumed.
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    extensions: Mapped[list[Extension]] = relationship(back_populates="tenant")

    __table_args__ = (CheckConstraint("product_line IN ('pbx', 'home')", name="product_line"),)

    def __str__(self) -> str:
        return self.name


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="owner")
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    # The owner's language: portal, e-mails and the prompts their phone speaks.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    tenant: Mapped[Tenant | None] = relationship()

    __table_args__ = (
        CheckConstraint("role IN ('platform_admin', 'tenant_admin', 'owner')", name="role"),
    )

    def __str__(self) -> str:
        return self.email


class Extension(Base):
    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    internal_number: Mapped[str] = mapped_column(String(20), unique=True)
    external_number: Mapped[str] = mapped_column(String(20))  # E.164
    display_name: Mapped[str] = mapped_column(String(80), default="")
    # The owner's phone answered busy: their queued callbacks are not claimed before this.
    busy_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    tenant: Mapped[Tenant] = relationship(back_populates="extensions")
    owner: Mapped[User | None] = relationship()
    profile: Mapped[Profile | None] = relationship(back_populates="extension")

    def __str__(self) -> str:
        return f"{self.internal_number} {self.display_name}".strip()


class Profile(Base):
    """An extension's CallNow page and every preference of it."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    extension_id: Mapped[int] = mapped_column(ForeignKey("extensions.id"), unique=True)
    callnow_id: Mapped[str] = mapped_column(String(32), unique=True)  # stored lower-case
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    do_not_allow: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmation_required: Mapped[bool] = mapped_column(Boolean, default=True)
    show_name: Mapped[bool] = mapped_column(Boolean, default=True)
    require_caller_name: Mapped[bool] = mapped_column(Boolean, default=True)
    image_validation: Mapped[bool] = mapped_column(Boolean, default=True)
    one_step_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Confirm in the portal instead of by keypad: requests wait until the owner clicks.
    confirm_on_web: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set by the spike detector: the page answers like an unknown one until then.
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Set by the provider, apart from the owner's own `enabled`: the owner cannot undo it.
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    welcome_message: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The embeddable button: sites allowed to frame the page (one origin a line), its look.
    embed_origins: Mapped[str] = mapped_column(Text, default="", server_default="")
    embed_label: Mapped[str] = mapped_column(
        String(40), default="Call me back", server_default="Call me back"
    )
    embed_colour: Mapped[str] = mapped_column(
        String(7), default="#0b62c4", server_default="#0b62c4"
    )
    embed_position: Mapped[str] = mapped_column(
        String(16), default="bottom-right", server_default="bottom-right"
    )
    # Languages offered to visitors, comma-separated codes; empty offers every shipped one.
    languages: Mapped[str] = mapped_column(String(80), default="", server_default="")
    default_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # Scheduled callbacks: whether visitors may book a slot, how many days ahead, how many
    # bookings one slot takes (bounds in `domain/scheduling.py`).
    scheduling_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    scheduling_days_ahead: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    scheduling_per_slot: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # A new random number, given by database triggers, on every change the public page reads
    # (migration 0027): web processes keep pages they served and compare this on each visit.
    # Random, not a count, so a page deleted and made again under the same id never matches an
    # old copy. Never set by our code.
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    extension: Mapped[Extension] = relationship(back_populates="profile")
    windows: Mapped[list[AvailabilityWindow]] = relationship(
        cascade="all, delete-orphan", order_by="AvailabilityWindow.weekday"
    )
    rules: Mapped[list[RuleRow]] = relationship(
        cascade="all, delete-orphan", order_by="RuleRow.position"
    )

    def __str__(self) -> str:
        return self.callnow_id


class RetiredCallNowId(Base):
    """A CallNow ID a page gave up: it still leads to that page (printed links keep working),
    and no other page may take it before `held_until`."""

    __tablename__ = "retired_callnow_ids"

    callnow_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # lower-case
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    held_until: Mapped[datetime] = mapped_column(UtcDateTime)


class AvailabilityWindow(Base):
    __tablename__ = "availability_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_minute BETWEEN 0 AND 1439", name="start_minute"),
        CheckConstraint("end_minute BETWEEN 0 AND 1440", name="end_minute"),
    )


class RuleRow(Base):
    """One of a page's ordered rules, as stored (the domain's is `domain.rules.Rule`)."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    number_match: Mapped[str | None] = mapped_column(String(10), nullable=True)
    number_value: Mapped[str | None] = mapped_column(String(20), nullable=True)
    name_match: Mapped[str | None] = mapped_column(String(10), nullable=True)
    name_value: Mapped[str | None] = mapped_column(String(60), nullable=True)


class DoNotCall(Base):
    """Numbers whose owners asked never to be called by any CallNow page."""

    __tablename__ = "do_not_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CallRequest(Base):
    __tablename__ = "call_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"))
    caller_name: Mapped[str | None] = mapped_column(String(60), nullable=True)
    number_typed: Mapped[str] = mapped_column(String(40))
    number_e164: Mapped[str] = mapped_column(String(20))
    source_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    channel: Mapped[str] = mapped_column(String(10), default="web")  # web, one_step, api
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(24))
    # The domain decision: reject / confirm / accept, and why.
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # The engine working on it and until when its lease holds; an expired lease is taken over.
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claim_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The visitor asked to cancel while an engine held it; the engine stops the call.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # What the call may cost at most (gross minor units), held against the owner's budget from
    # dispatch until its charge is posted, so calls running at once cannot overrun it together.
    reserved_minor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Whether the number is on the do-not-call list now. Deferred: the engine's claim asks for
    # it with the row, so checking before it dials costs no query of its own. Kept through the
    # claim's own flush, which changes nothing it depends on.
    number_on_do_not_call: Mapped[bool] = column_property(
        exists().where(DoNotCall.e164 == number_e164), deferred=True, expire_on_flush=False
    )
    # A visitor's message for the owner, left once after the call could not happen.
    message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    message_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # A booked slot: the request waits, unclaimable, until then (None: as soon as possible).
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    profile: Mapped[Profile] = relationship()
    events: Mapped[list[RequestEvent]] = relationship(
        order_by="RequestEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_call_requests_profile_created", "profile_id", "created_at"),
        Index("ix_call_requests_state", "state"),
        Index("ix_call_requests_scheduled", "profile_id", "scheduled_for"),
        # A new request asks for its number's standing on its page (store.requests.standing_of).
        Index("ix_call_requests_profile_number", "profile_id", "number_e164"),
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_call_requests_idempotency"),
    )


class RequestEvent(Base):
    """Append-only history of a request: each state it entered, when and why."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("call_requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ApiKey(Base):
    """An owner's Call API key. The secret is shown once; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    user: Mapped[User] = relationship()


class CallLeg(Base):
    """One dialled leg of a callback. The row is written before the INVITE leaves, so a crash
    can never lead to a second call for the same leg; the end fields follow when it ends."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("call_requests.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # owner, requester (the visitor leg)
    destination: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ringing_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Indexed: engines look for legs left open (IS NULL) and recently ended ones unbilled.
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    sip_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(12), nullable=True)
    billable_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # How to end the leg if its engine dies (domain.calls.PreparedHangup), kept current while
    # the leg is up: the INVITE's CANCEL while it rings, a BYE once answered.
    sip_call_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    media_call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hangup_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    hangup_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    hangup_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    hangup_port: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        # One owner leg and one visitor leg per request, ever.
        UniqueConstraint("request_id", "role", name="uq_call_legs_request_role"),
        CheckConstraint("role IN ('owner', 'requester')", name="role"),
        CheckConstraint("billable_seconds >= 0", name="billable_seconds"),
    )


class SpentCaptcha(Base):
    """A CAPTCHA challenge already answered. Challenges are signed, not stored: only spent ones
    are kept, until they would have expired anyway, so the unique nonce refuses a replay."""

    __tablename__ = "spent_captchas"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    spent_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class LimitHit(Base):
    """Retired with migration 0026 (limit counters in time slices, `LimitCount`): kept only so a
    process of the version before it keeps counting while a rolling upgrade replaces it. Nothing
    reads it any more; a later migration drops it."""

    __tablename__ = "limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80))
    hit_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    __table_args__ = (Index("ix_limit_hits_rule_key_hit_at", "rule", "key", "hit_at"),)


class LimitCount(Base):
    """The hits of a rate limit (rule, key) in one time slice of one of its windows, on the
    embedded default (no Redis): the counters survive a restart. A window's count is the sum of
    its last slices (`store/limit_counters`); a slice goes once its window has passed it
    (`expires_at`)."""

    __tablename__ = "limit_counts"

    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Slices since the epoch, each a thirtieth of the window long.
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class PageAlert(Base):
    """A page under unusual load: it asks every visitor for a CAPTCHA until `until`, and its
    owner is told. `notified_at` is left for the e-mail outbox to set once it has written."""

    __tablename__ = "page_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class AuditEntry(Base):
    """Who changed what: profiles, rules, decks, users. Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(254), default="")  # email, "cli", "api key …"
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class WebhookEndpoint(Base):
    """Where an owner (or a whole tenant) wants request state changes POSTed."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # HMAC-SHA256 key for the signature header
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One state change for one endpoint, retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    # Both empty for a page alert (`page_alerts`), which belongs to no request.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_requests.id"), index=True, nullable=True
    )
    request_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("request_events.id"), nullable=True
    )
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    gave_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("endpoint_id", "request_event_id", name="uq_webhook_deliveries_event"),
    )
