"""Say what a call will cost, for the owner's prompt and the web ("a mobile, 45 cents a minute").

The phrase states the tariff, not an estimate of the call: the owner decides before anyone knows
how long the call will last. Prices are the tariff's tax-exclusive prices; `mention_tax` adds
"plus GST" where a page must say so.
"""

from __future__ import annotations

from decimal import Decimal

from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import (
    BillingPolicy,
    FlatRate,
    OwnerLegRate,
    Quote,
    RateEntry,
    micros_to_decimal,
)

_CLASS_PHRASE = {
    DestinationClass.LOCAL: "a local call",
    DestinationClass.NATIONAL_FIXED: "a national call",
    DestinationClass.MOBILE: "a mobile",
    DestinationClass.INTERNATIONAL: "an international call",
    DestinationClass.SPECIAL: "a special-rate number",
    DestinationClass.PREMIUM: "a premium number",
    DestinationClass.INTERNAL: "your extension's leg",
}
_SYMBOLS = {"AUD": "$", "NZD": "$", "USD": "$", "CAD": "$", "GBP": "£", "EUR": "€"}
_MINOR_UNIT_NAMES = {
    "AUD": ("cent", "cents"),
    "NZD": ("cent", "cents"),
    "USD": ("cent", "cents"),
    "CAD": ("cent", "cents"),
    "EUR": ("cent", "cents"),
    "GBP": ("penny", "pence"),
}
_TAX_NAMES = {"AUD": "GST", "NZD": "GST"}


def describe_cost(quote: Quote, policy: BillingPolicy, *, mention_tax: bool = False) -> str:
    """The quote's tariff and, where the provider prices the owner's own leg, that price too:
    the owner pays both when they accept ("a local call, 12 cents; your extension's leg, 5
    cents")."""
    phrase = _tariff_phrase(quote.destination_class, quote.tariff, policy)
    if quote.destination_class is not DestinationClass.INTERNAL and not policy.owner_leg.is_free:
        owner_leg = _tariff_phrase(DestinationClass.INTERNAL, policy.owner_leg, policy)
        phrase = f"{phrase}; {owner_leg}"
    if mention_tax and policy.tax_rate > 0:
        phrase += f" plus {_TAX_NAMES.get(policy.currency_code, 'tax')}"
    return phrase


def tariff_price(tariff: FlatRate | OwnerLegRate | RateEntry, policy: BillingPolicy) -> str:
    """The price alone ("45 cents a minute"), as a rate card lists it; tax-exclusive."""
    if isinstance(tariff, FlatRate):
        return _minor(tariff.amount_minor, policy)
    if isinstance(tariff, OwnerLegRate):
        return _owner_leg(tariff, policy)
    return _per_minute(tariff, policy)


def _tariff_phrase(
    destination_class: DestinationClass,
    tariff: FlatRate | OwnerLegRate | RateEntry,
    policy: BillingPolicy,
) -> str:
    if isinstance(tariff, FlatRate):
        price = _minor(tariff.amount_minor, policy)
    elif isinstance(tariff, OwnerLegRate):
        price = _owner_leg(tariff, policy)
    else:
        price = _per_minute(tariff, policy)
    return f"{_CLASS_PHRASE[destination_class]}, {price}"


def _per_minute(entry: RateEntry, policy: BillingPolicy) -> str:
    connection, minimum = entry.connection_fee_micros, entry.minimum_charge_micros
    if entry.price_per_minute_micros == 0:  # a flat price per answered call in deck form
        return _money(micros_to_decimal(max(connection, minimum)), policy)
    text = f"{_money(micros_to_decimal(entry.price_per_minute_micros), policy)} a minute"
    if connection:
        text += f" plus {_money(micros_to_decimal(connection), policy)} to connect"
    if minimum > connection:
        text += f", at least {_money(micros_to_decimal(minimum), policy)}"
    return text


def _owner_leg(rate: OwnerLegRate, policy: BillingPolicy) -> str:
    if rate.per_minute_minor == 0:
        return _minor(rate.flat_minor, policy)
    text = f"{_minor(rate.per_minute_minor, policy)} a minute"
    if rate.flat_minor:
        text += f" plus {_minor(rate.flat_minor, policy)} when answered"
    return text


def _minor(amount_minor: int, policy: BillingPolicy) -> str:
    return _money(Decimal(amount_minor).scaleb(-policy.minor_unit_exponent), policy)


def _money(amount: Decimal, policy: BillingPolicy) -> str:
    """Cents below one dollar, as people say them; otherwise symbol and minor-unit decimals."""
    if amount == 0:
        return "free"
    exponent = policy.minor_unit_exponent
    minor_names = _MINOR_UNIT_NAMES.get(policy.currency_code)
    if minor_names and exponent == 2 and amount < 1:
        minor = f"{amount.scaleb(2).normalize():f}"
        return f"{minor} {minor_names[0] if minor == '1' else minor_names[1]}"
    quantum = Decimal(1).scaleb(-exponent)
    exact_in_minor_units = amount == amount.quantize(quantum)
    text = f"{amount.quantize(quantum):f}" if exact_in_minor_units else f"{amount.normalize():f}"
    symbol = _SYMBOLS.get(policy.currency_code)
    return f"{symbol}{text}" if symbol else f"{text} {policy.currency_code}"
