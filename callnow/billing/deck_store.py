"""Rate decks in the database: import whole or not at all, export, and load for rating.

A deck row is never edited after import; a new price list is a new deck with its own effective
instant. Charges name the deck that priced them, so history stays explainable.

Two ways to get a Rater, both through the domain's DeckSet so precedence (the tenant's deck in
force, else the platform's) is decided in one place:
  - `load_rater` reads every deck whole: for re-rating a period, where many calls are priced.
  - `rater_for_number` reads only the decks in force at one instant, and of those only the rows
    whose prefix starts the number (at most 15 per deck): one indexed query per call instead of
    loading a 50,000-row deck each time a call is posted or checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from callnow.billing.deck_csv import (
    WHOLE_FILE,
    DeckCsvError,
    DeckImportFailed,
    deck_to_csv,
    parse_deck_csv,
    parse_deck_csv_bytes,
)
from callnow.domain.rating import (
    MAX_PREFIX_DIGITS,
    BillingPolicy,
    DeckSet,
    RateDeck,
    RateEntry,
    Rater,
)
from callnow.store.billing_models import RateDeckEntryRow, RateDeckRow
from callnow.store.models import Tenant

MAX_DECK_NAME_CHARS = 120


@dataclass(frozen=True, slots=True)
class DeckSummary:
    id: int
    tenant_id: int | None
    tenant_name: str | None
    name: str
    effective_from: datetime
    currency: str
    created_at: datetime
    entries: int


def import_deck(
    session: Session,
    csv_text: str | bytes,
    tenant_id: int | None,
    name: str,
    effective_from: datetime,
    *,
    policy: BillingPolicy | None = None,
) -> RateDeckRow | DeckImportFailed:
    """Store the whole deck, or nothing and every error with its line number.

    Nothing is written until the whole file has parsed, so a bad file leaves the decks in force
    exactly as they were. `tenant_id` None imports a platform deck. Bytes (an uploaded file)
    must be UTF-8.
    """
    policy = policy or BillingPolicy()
    problem = _check_deck_header(session, tenant_id, name, effective_from)
    if problem:
        return DeckImportFailed((DeckCsvError(WHOLE_FILE, problem),))
    if isinstance(csv_text, bytes):
        parsed = parse_deck_csv_bytes(csv_text, deck_id="new", effective_from=effective_from)
    else:
        parsed = parse_deck_csv(csv_text, deck_id="new", effective_from=effective_from)
    if isinstance(parsed, DeckImportFailed):
        return parsed
    deck = RateDeckRow(
        tenant_id=tenant_id,
        name=name.strip(),
        effective_from=effective_from,
        currency=policy.currency_code,
    )
    session.add(deck)
    session.flush()
    # Core bulk insert: a 50,000-row deck in one executemany rather than 50,000 ORM objects.
    session.execute(
        insert(RateDeckEntryRow),
        [
            {
                "deck_id": deck.id,
                "prefix": entry.prefix,
                "description": entry.description,
                "connection_fee_micros": entry.connection_fee_micros,
                "price_per_minute_micros": entry.price_per_minute_micros,
                "minimum_charge_micros": entry.minimum_charge_micros,
                "initial_increment_s": entry.initial_increment_s,
                "subsequent_increment_s": entry.subsequent_increment_s,
            }
            for entry in parsed
        ],
    )
    return deck


def _check_deck_header(
    session: Session, tenant_id: int | None, name: str, effective_from: datetime
) -> str | None:
    if not 1 <= len(name.strip()) <= MAX_DECK_NAME_CHARS:
        return f"a deck name is 1 to {MAX_DECK_NAME_CHARS} characters"
    if effective_from.tzinfo is None or effective_from.utcoffset() is None:
        return "the effective date must carry a time zone"
    if tenant_id is not None and session.get(Tenant, tenant_id) is None:
        return f"no tenant {tenant_id}"
    # The domain refuses two decks of one owner taking effect at the same instant: say so now
    # rather than let the next rating fail.
    clash = session.scalars(
        select(RateDeckRow.name).where(
            _owned_by(tenant_id), RateDeckRow.effective_from == effective_from
        )
    ).first()
    if clash is not None:
        return f"deck '{clash}' already takes effect at {effective_from.isoformat()}"
    return None


def _owned_by(tenant_id: int | None):
    if tenant_id is None:
        return RateDeckRow.tenant_id.is_(None)
    return RateDeckRow.tenant_id == tenant_id


def platform_deck_exists(session: Session) -> bool:
    query = select(RateDeckRow.id).where(RateDeckRow.tenant_id.is_(None))
    return session.scalars(query).first() is not None


def export_deck(session: Session, deck_id: int) -> str | None:
    """The deck as CSV that import_deck reads back to the same prices; None if no such deck."""
    deck = load_deck(session, deck_id)
    return None if deck is None else deck_to_csv(deck)


def load_deck(session: Session, deck_id: int) -> RateDeck | None:
    row = session.get(RateDeckRow, deck_id)
    if row is None:
        return None
    entries = session.scalars(select(RateDeckEntryRow).where(RateDeckEntryRow.deck_id == deck_id))
    return RateDeck(str(row.id), row.effective_from, (_entry(e) for e in entries))


def list_decks(session: Session) -> list[DeckSummary]:
    counts = (
        select(RateDeckEntryRow.deck_id, func.count().label("n"))
        .group_by(RateDeckEntryRow.deck_id)
        .subquery()
    )
    rows = session.execute(
        select(RateDeckRow, Tenant.name, func.coalesce(counts.c.n, 0))
        .outerjoin(Tenant, Tenant.id == RateDeckRow.tenant_id)
        .outerjoin(counts, counts.c.deck_id == RateDeckRow.id)
        .order_by(RateDeckRow.tenant_id.is_not(None), Tenant.name, RateDeckRow.effective_from)
    )
    return [
        DeckSummary(
            deck.id,
            deck.tenant_id,
            tenant_name,
            deck.name,
            deck.effective_from,
            deck.currency,
            deck.created_at,
            int(entries),
        )
        for deck, tenant_name, entries in rows
    ]


def load_rater(session: Session, policy: BillingPolicy | None = None) -> Rater:
    """Every deck of the policy's currency, whole, as one Rater."""
    policy = policy or BillingPolicy()
    decks = list(
        session.scalars(
            select(RateDeckRow)
            .where(RateDeckRow.currency == policy.currency_code)
            .order_by(RateDeckRow.id)
        )
    )
    entries: dict[int, list[RateEntry]] = defaultdict(list)
    if decks:
        rows = session.scalars(
            select(RateDeckEntryRow).where(RateDeckEntryRow.deck_id.in_([d.id for d in decks]))
        )
        for row in rows:
            entries[row.deck_id].append(_entry(row))
    return Rater(_deck_set(decks, entries), policy)


def rater_for_number(
    session: Session,
    digits: str,
    at: datetime,
    tenant_id: int | None,
    policy: BillingPolicy | None = None,
) -> Rater:
    """A Rater that prices `digits` (E.164 without '+') at `at` exactly as load_rater would."""
    policy = policy or BillingPolicy()
    longest = min(len(digits), MAX_PREFIX_DIGITS)
    values: dict[str, Any] = {
        "at": at,
        "currency": policy.currency_code,
        "prefixes": [digits[:length] for length in range(1, longest + 1)],
    }
    if tenant_id is not None:
        values["tenant_id"] = tenant_id
    decks: dict[int, Any] = {}
    entries: dict[int, list[RateEntry]] = defaultdict(list)
    # Plain rows, not mapped objects: loading these into the session cost more than the query.
    for row in session.execute(_decks_in_force_query(tenant_id is not None), values):
        decks[row.id] = row
        if row.prefix is not None:
            entries[row.id].append(_entry(row))
    return Rater(_deck_set(list(decks.values()), entries), policy)


# Built once, with the values as parameters: rating runs for every call the engine dials, and
# building and keying this statement cost more CPU than running it.
@cache
def _decks_in_force_query(with_tenant: bool) -> Select[*tuple[Any, ...]]:
    """The platform's deck in force at `at` and, for a tenant, its own, each with its rows
    whose prefix is one of `prefixes`: one round trip for what pricing a number needs. Each
    row has the deck's id, tenant_id and effective_from, and the entry's fields (None where
    the deck has no row for any of the prefixes)."""
    owners: list[ColumnElement[bool]] = [RateDeckRow.tenant_id.is_(None)]
    if with_tenant:
        owners.append(RateDeckRow.tenant_id == bindparam("tenant_id"))
    in_force = (
        RateDeckRow.currency == bindparam("currency"),
        RateDeckRow.effective_from <= bindparam("at", type_=RateDeckRow.effective_from.type),
    )
    latest = [
        select(RateDeckRow.id)
        .where(owner, *in_force)
        .order_by(RateDeckRow.effective_from.desc(), RateDeckRow.id.desc())
        .limit(1)
        .scalar_subquery()
        for owner in owners
    ]
    prefix_rows = and_(
        RateDeckEntryRow.deck_id == RateDeckRow.id,
        RateDeckEntryRow.prefix.in_(bindparam("prefixes", expanding=True)),
    )
    entry_fields = (
        RateDeckEntryRow.prefix,
        RateDeckEntryRow.description,
        RateDeckEntryRow.connection_fee_micros,
        RateDeckEntryRow.price_per_minute_micros,
        RateDeckEntryRow.initial_increment_s,
        RateDeckEntryRow.subsequent_increment_s,
        RateDeckEntryRow.minimum_charge_micros,
    )
    return (
        select(RateDeckRow.id, RateDeckRow.tenant_id, RateDeckRow.effective_from, *entry_fields)
        .select_from(RateDeckRow)
        .outerjoin(RateDeckEntryRow, prefix_rows)
        .where(or_(*(RateDeckRow.id == i for i in latest)))
    )


def _deck_set(decks: Sequence[_Deck], entries: dict[int, list[RateEntry]]) -> DeckSet:
    # Import refuses a second deck at the same instant; should one slip in (two imports racing),
    # the later import wins here and in _decks_in_force alike instead of breaking all rating.
    latest: dict[tuple[int | None, datetime], _Deck] = {}
    for deck in sorted(decks, key=lambda d: d.id):
        latest[(deck.tenant_id, deck.effective_from)] = deck
    platform: list[RateDeck] = []
    tenants: dict[str, list[RateDeck]] = defaultdict(list)
    for deck in latest.values():
        domain_deck = RateDeck(str(deck.id), deck.effective_from, entries.get(deck.id, ()))
        if deck.tenant_id is None:
            platform.append(domain_deck)
        else:
            tenants[str(deck.tenant_id)].append(domain_deck)
    return DeckSet(platform, tenants)


class _Deck(Protocol):
    """What rating needs of a deck: a `RateDeckRow`, or a row of `_decks_in_force_query`."""

    @property
    def id(self) -> int: ...
    @property
    def tenant_id(self) -> int | None: ...
    @property
    def effective_from(self) -> datetime: ...


class _EntryFields(Protocol):
    """A `RateDeckEntryRow`, or a row of `_decks_in_force_query` with an entry."""

    @property
    def prefix(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def connection_fee_micros(self) -> int: ...
    @property
    def price_per_minute_micros(self) -> int: ...
    @property
    def initial_increment_s(self) -> int: ...
    @property
    def subsequent_increment_s(self) -> int: ...
    @property
    def minimum_charge_micros(self) -> int: ...


def _entry(row: _EntryFields) -> RateEntry:
    return RateEntry(
        prefix=row.prefix,
        description=row.description,
        connection_fee_micros=row.connection_fee_micros,
        price_per_minute_micros=row.price_per_minute_micros,
        initial_increment_s=row.initial_increment_s,
        subsequent_increment_s=row.subsequent_increment_s,
        minimum_charge_micros=row.minimum_charge_micros,
    )
