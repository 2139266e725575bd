"""What calls cost an owner, from the tariffs and the rate deck in force: the Charges page's
rate card. Prices are tax-exclusive, as the deck and the phone prompt state them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from sqlalchemy.orm import Session

from callnow.billing.deck_store import list_decks, load_deck
from callnow.domain.cost_phrase import tariff_price
from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import BillingPolicy, FlatRate, OwnerLegRate, RateDeck, RateEntry
from callnow.i18n import gettext as _
from callnow.store.models import Extension

# A deck can hold thousands of countries; the page lists this many and says how many more.
MAX_INTERNATIONAL_LINES = 40


@dataclass(frozen=True, slots=True)
class RateCardLine:
    label: str
    price: str


@dataclass(frozen=True)
class RateCard:
    home: list[RateCardLine]
    international: list[RateCardLine]
    international_more: int
    deck_name: str | None


def deck_in_force(
    session: Session, tenant_id: int, at: datetime, policy: BillingPolicy
) -> tuple[str, RateDeck] | None:
    """The deck that prices this tenant's calls at `at`: its own newest in force, else the
    platform's (as `DeckSet.in_force` chooses), with its name."""
    decks = [
        d
        for d in list_decks(session)
        if d.currency == policy.currency_code and d.effective_from <= at
    ]
    for owner in (tenant_id, None):
        mine = [d for d in decks if d.tenant_id == owner]
        if mine:
            newest = max(mine, key=lambda d: d.effective_from)
            deck = load_deck(session, newest.id)
            return (newest.name, deck) if deck is not None else None
    return None


def _example(region: str, kind: int) -> str | None:
    number = phonenumbers.example_number_for_type(region, kind)
    return None if number is None else phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _price_of(
    destination_class: DestinationClass,
    number: str | None,
    deck: RateDeck | None,
    policy: BillingPolicy,
) -> str | None:
    tariff = policy.tariffs.get(destination_class)
    if isinstance(tariff, FlatRate | OwnerLegRate):
        return tariff_price(tariff, policy)
    if tariff is None or deck is None or number is None:
        return None
    entry = deck.find(number.lstrip("+"))
    return None if entry is None else tariff_price(entry, policy)


def rate_card(
    session: Session, extension: Extension, at: datetime, policy: BillingPolicy
) -> RateCard:
    tenant = extension.tenant
    found = deck_in_force(session, tenant.id, at, policy)
    deck_name, deck = found if found is not None else (None, None)
    region = tenant.region.upper()
    fixed = _example(region, PhoneNumberType.FIXED_LINE)
    mobile = _example(region, PhoneNumberType.MOBILE)
    home: list[RateCardLine] = []
    for label, destination_class, number in (
        # A local call is one within the extension's own area, so its own number stands in.
        (_("A local call"), DestinationClass.LOCAL, extension.external_number),
        (_("A national call"), DestinationClass.NATIONAL_FIXED, fixed),
        (_("A mobile"), DestinationClass.MOBILE, mobile),
    ):
        price = _price_of(destination_class, number, deck, policy)
        home.append(RateCardLine(label, price or _("not offered")))
    if not policy.owner_leg.is_free:
        home.append(RateCardLine(_("Your extension's leg"), tariff_price(policy.owner_leg, policy)))
    international, more = _international(region, deck, policy)
    return RateCard(home, international, more, deck_name)


def _international(
    region: str, deck: RateDeck | None, policy: BillingPolicy
) -> tuple[list[RateCardLine], int]:
    tariff = policy.tariffs.get(DestinationClass.INTERNATIONAL)
    if tariff is None:
        return [RateCardLine(_("International calls"), _("not offered"))], 0
    if isinstance(tariff, FlatRate | OwnerLegRate):
        return [RateCardLine(_("International calls"), tariff_price(tariff, policy))], 0
    if deck is None:
        return [], 0
    home_code = str(phonenumbers.country_code_for_region(region))
    foreign: list[RateEntry] = sorted(
        (e for e in deck if not e.prefix.startswith(home_code)),
        key=lambda e: (e.description, e.prefix),
    )
    shown = [
        RateCardLine(f"{e.description} (+{e.prefix})", tariff_price(e, policy))
        for e in foreign[:MAX_INTERNATIONAL_LINES]
    ]
    return shown, max(0, len(foreign) - MAX_INTERNATIONAL_LINES)
