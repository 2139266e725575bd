"""Say what a call will cost, for the owner's prompt and the web ("a mobile, 45 cents a minute").

The phrase states the tariff, not an estimate of the call: the owner decides before anyone knows
how long the call will last. Prices are the tariff's tax-exclusive prices; `mention_tax` adds
"plus GST" where a page must say so.

Every phrase is in the language in use (`callnow.i18n.use_language`): the owner's, for their
phone and their portal. Whole phrases with placeholders, never pieces glued together; prices
the way that language says them ("45 centimes", "1,20 dollar australien").
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, format_decimal

from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import (
    BillingPolicy,
    FlatRate,
    OwnerLegRate,
    Quote,
    RateEntry,
    micros_to_decimal,
)
from callnow.i18n import active_language, ngettext
from callnow.i18n import gettext as _

_SYMBOLS = {"AUD": "$", "NZD": "$", "USD": "$", "CAD": "$", "GBP": "£", "EUR": "€"}
# Currencies whose hundredth is said as cents, and as pence.
_CENTS = frozenset({"AUD", "NZD", "USD", "CAD", "EUR"})
_PENCE = frozenset({"GBP"})
# Currencies whose tax is named GST.
_GST = frozenset({"AUD", "NZD"})


def _class_phrase(destination_class: DestinationClass) -> str:
    phrases = {
        DestinationClass.LOCAL: _("a local call"),
        DestinationClass.NATIONAL_FIXED: _("a national call"),
        DestinationClass.MOBILE: _("a mobile"),
        DestinationClass.INTERNATIONAL: _("an international call"),
        DestinationClass.SPECIAL: _("a special-rate number"),
        DestinationClass.PREMIUM: _("a premium number"),
        DestinationClass.INTERNAL: _("your extension's leg"),
    }
    return phrases[destination_class]


def describe_cost(quote: Quote, policy: BillingPolicy, *, mention_tax: bool = False) -> str:
    """The quote's tariff and, where the provider prices the owner's own leg, that price too:
    the owner pays both when they accept ("a local call, 12 cents; your extension's leg, 5
    cents")."""
    phrase = _tariff_phrase(quote.destination_class, quote.tariff, policy)
    if quote.destination_class is not DestinationClass.INTERNAL and not policy.owner_leg.is_free:
        owner_leg = _tariff_phrase(DestinationClass.INTERNAL, policy.owner_leg, policy)
        # Translators: a call's price, then the price of the owner's own leg.
        phrase = _("%(call)s; %(owner_leg)s") % {"call": phrase, "owner_leg": owner_leg}
    if mention_tax and policy.tax_rate > 0:
        if policy.currency_code in _GST:
            return _("%(phrase)s plus GST") % {"phrase": phrase}
        return _("%(phrase)s plus tax") % {"phrase": phrase}
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
    # Translators: what kind of call it is, then its price ("a mobile, 45 cents a minute").
    return _("%(destination)s, %(price)s") % {
        "destination": _class_phrase(destination_class),
        "price": price,
    }


def _per_minute(entry: RateEntry, policy: BillingPolicy) -> str:
    connection, minimum = entry.connection_fee_micros, entry.minimum_charge_micros
    if entry.price_per_minute_micros == 0:  # a flat price per answered call in deck form
        return _money(micros_to_decimal(max(connection, minimum)), policy)
    words = {
        "rate": _money(micros_to_decimal(entry.price_per_minute_micros), policy),
        "fee": _money(micros_to_decimal(connection), policy),
        "minimum": _money(micros_to_decimal(minimum), policy),
    }
    if connection and minimum > connection:
        text = _("%(rate)s a minute plus %(fee)s to connect, at least %(minimum)s")
    elif connection:
        text = _("%(rate)s a minute plus %(fee)s to connect")
    elif minimum > connection:
        text = _("%(rate)s a minute, at least %(minimum)s")
    else:
        text = _("%(rate)s a minute")
    return text % words


def _owner_leg(rate: OwnerLegRate, policy: BillingPolicy) -> str:
    if rate.per_minute_minor == 0:
        return _minor(rate.flat_minor, policy)
    words = {
        "rate": _minor(rate.per_minute_minor, policy),
        "flat": _minor(rate.flat_minor, policy),
    }
    if rate.flat_minor:
        return _("%(rate)s a minute plus %(flat)s when answered") % words
    return _("%(rate)s a minute") % words


def _minor(amount_minor: int, policy: BillingPolicy) -> str:
    return _money(Decimal(amount_minor).scaleb(-policy.minor_unit_exponent), policy)


def _money(amount: Decimal, policy: BillingPolicy) -> str:
    """Cents below one dollar (or euro, or pound), as people say them; otherwise, in English,
    symbol and minor-unit decimals ("$1.20"), and in other languages the amount and the
    currency's name in that language ("1,20 dollar australien")."""
    if amount == 0:
        return _("free")
    language = active_language()
    exponent = policy.minor_unit_exponent
    code = policy.currency_code
    if (code in _CENTS or code in _PENCE) and exponent == 2 and amount < 1:
        minor = amount.scaleb(2).normalize()
        # A whole count picks the plural form; a fraction ("12.5") reads as many.
        count = int(minor) if minor == minor.to_integral_value() else 5
        words = {"count": format_decimal(minor, locale=language, decimal_quantization=False)}
        if code in _PENCE:
            return ngettext("%(count)s penny", "%(count)s pence", count) % words
        return ngettext("%(count)s cent", "%(count)s cents", count) % words
    if language != "en":
        # The currency's own decimals at least ("1,20"), more where the tariff has them.
        return format_currency(
            amount, code, locale=language, format_type="name", decimal_quantization=False
        )
    quantum = Decimal(1).scaleb(-exponent)
    exact_in_minor_units = amount == amount.quantize(quantum)
    shown = amount.quantize(quantum) if exact_in_minor_units else amount.normalize()
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{shown:f}" if symbol else f"{shown:f} {code}"
