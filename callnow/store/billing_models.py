"""Billing tables: rate decks, posted charges and budgets.

Money columns are integers: deck prices in micro-units of the major unit, charges and budgets in
the currency's minor unit (see callnow.domain.rating). BigInteger because a 50,000-row deck or a
year of a busy tenant's charges must never come near an overflow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callnow.store.models import Base, UtcDateTime, utcnow


class RateDeckRow(Base):
    """One imported price list. Rows are never edited: a new price list is a new deck, so every
    charge keeps pointing at the prices that made it."""

    __tablename__ = "rate_decks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL: the platform's default deck; otherwise a tenant's own deck, which overrides it.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(120))
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    entries: Mapped[list[RateDeckEntryRow]] = relationship(
        back_populates="deck", cascade="all, delete-orphan", order_by="RateDeckEntryRow.prefix"
    )

    __table_args__ = (Index("ix_rate_decks_tenant_effective", "tenant_id", "effective_from"),)


class RateDeckEntryRow(Base):
    __tablename__ = "rate_deck_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    deck_id: Mapped[int] = mapped_column(ForeignKey("rate_decks.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(15))
    description: Mapped[str] = mapped_column(String(200), default="")
    connection_fee_micros: Mapped[int] = mapped_column(BigInteger)
    price_per_minute_micros: Mapped[int] = mapped_column(BigInteger)
    minimum_charge_micros: Mapped[int] = mapped_column(BigInteger)
    initial_increment_s: Mapped[int] = mapped_column(Integer)
    subsequent_increment_s: Mapped[int] = mapped_column(Integer)

    deck: Mapped[RateDeckRow] = relationship(back_populates="entries")

    __table_args__ = (
        # Also the index behind longest-prefix lookups: (deck, one of the number's prefixes).
        UniqueConstraint("deck_id", "prefix", name="uq_rate_deck_entries_deck_prefix"),
        CheckConstraint(
            "connection_fee_micros >= 0 AND price_per_minute_micros >= 0 "
            "AND minimum_charge_micros >= 0",
            name="prices_not_negative",
        ),
        CheckConstraint(
            "initial_increment_s >= 1 AND subsequent_increment_s >= 1", name="increments_positive"
        ),
    )


class ChargeRow(Base):
    """What an answered leg cost the owner: the visitor leg, and the owner's own leg when its
    price is configured (class "internal"). The unique leg id is the guarantee that a retried or
    crashed posting can never bill a leg twice."""

    __tablename__ = "charges"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_leg_id: Mapped[int] = mapped_column(ForeignKey("call_legs.id"), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("call_requests.id"))
    extension_id: Mapped[int] = mapped_column(ForeignKey("extensions.id"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    # E.164 as dialled; for the owner's leg, the extension's internal number.
    number: Mapped[str] = mapped_column(String(20))
    destination_class: Mapped[str] = mapped_column(String(16))
    deck_id: Mapped[int | None] = mapped_column(ForeignKey("rate_decks.id"), nullable=True)
    prefix: Mapped[str | None] = mapped_column(String(15), nullable=True)
    duration_s: Mapped[int] = mapped_column(Integer)
    billed_s: Mapped[int] = mapped_column(Integer)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_charges_extension_answered", "extension_id", "answered_at"),
        Index("ix_charges_tenant_answered", "tenant_id", "answered_at"),
        Index("ix_charges_answered", "answered_at"),
        CheckConstraint(
            "net_minor >= 0 AND tax_minor >= 0 AND gross_minor = net_minor + tax_minor",
            name="amounts",
        ),
        CheckConstraint("duration_s >= 0 AND billed_s >= 0", name="seconds"),
    )


class OwnerLegPriceRow(Base):
    """The owner-leg price a dispatched call was planned (and its budget reserved) with.

    Written in the claim transaction only when the owner's leg is priced, so a call is billed
    as it was planned even if the setting changes while it runs, and switching a price on never
    bills the owner legs of calls made while they were free.
    """

    __tablename__ = "owner_leg_prices"

    request_id: Mapped[int] = mapped_column(ForeignKey("call_requests.id"), primary_key=True)
    flat_minor: Mapped[int] = mapped_column(BigInteger)
    per_minute_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("flat_minor >= 0 AND per_minute_minor >= 0", name="prices_not_negative"),
    )


class BudgetRow(Base):
    """Spending limits of one extension or one tenant, in gross minor units; NULL = no limit.

    The prepaid balance is the balance as it stood at `balance_set_at`: what remains is that
    minus every charge posted since, so posting a charge never has to update this row (and two
    calls ending together cannot lose an update). The credit limit caps the calendar month's
    spend, in the tenant's time zone: the month is the statement period.
    """

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id"), unique=True, nullable=True
    )
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id"), unique=True, nullable=True
    )
    daily_cap_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prepaid_balance_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    balance_set_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    credit_limit_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The extension owner's own daily cap (portal), checked beside the provider's: an owner
    # can only ever spend less than the provider allows.
    owner_daily_cap_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("(extension_id IS NULL) <> (tenant_id IS NULL)", name="one_owner"),
        CheckConstraint(
            "(daily_cap_minor IS NULL OR daily_cap_minor >= 0) "
            "AND (credit_limit_minor IS NULL OR credit_limit_minor >= 0)",
            name="limits_not_negative",
        ),
        CheckConstraint(
            "(prepaid_balance_minor IS NULL) = (balance_set_at IS NULL)", name="balance_dated"
        ),
    )
