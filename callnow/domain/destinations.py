"""Classify a dialled E.164 number into the destination classes we price differently.

The class is decided once, when the visitor asks for a call back, and travels with the call
record to rating: the rate deck prices the exact prefix, the class chooses the tariff (a local
call is flat, everything else per minute) and refuses what we never dial (premium).

"Local" follows the simple rule CallNow advertises: a fixed line in the same country and with the
same national destination (area) code as the extension's external number. Australian carriers use
finer local-call zones inside an area code (02 covers all of NSW and the ACT); a tenant who needs
those zones prices them with a per-minute deck instead of the flat local tariff.

Domestic versus international is decided by country calling code, not by region: +44 7911 is a
Guernsey mobile to phonenumbers, yet a UK tenant dials it as a national mobile. The same rule makes
Canada "national" for a US tenant (both +1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

DEFAULT_REGION = "AU"

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class DestinationClass(StrEnum):
    LOCAL = "local"
    NATIONAL_FIXED = "national_fixed"
    MOBILE = "mobile"
    INTERNATIONAL = "international"
    SPECIAL = "special"
    PREMIUM = "premium"
    # The owner's own leg: CallNow ringing their extension. Never the class of a dialled number;
    # it only names that leg's tariff and charges.
    INTERNAL = "internal"


class RefusalReason(StrEnum):
    NOT_E164 = "not_e164"
    INVALID_NUMBER = "invalid_number"
    UNSUPPORTED_NUMBER_TYPE = "unsupported_number_type"


@dataclass(frozen=True, slots=True)
class Destination:
    """A number we know how to price."""

    e164: str
    destination_class: DestinationClass
    country_code: int
    region_code: str
    number_type: str  # phonenumbers' type name, kept for display and audit

    @property
    def digits(self) -> str:
        """The E.164 digits without '+', as rate-deck prefixes are written."""
        return self.e164[1:]


@dataclass(frozen=True, slots=True)
class NumberRefused:
    """A number we will not classify, so will not dial."""

    number: str
    reason: RefusalReason
    detail: str


# Types a visitor may ask us to dial, by whether the number is in the tenant's own country.
_DOMESTIC_CLASS: dict[int, DestinationClass] = {
    PhoneNumberType.FIXED_LINE: DestinationClass.NATIONAL_FIXED,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: DestinationClass.NATIONAL_FIXED,
    PhoneNumberType.MOBILE: DestinationClass.MOBILE,
    PhoneNumberType.TOLL_FREE: DestinationClass.SPECIAL,
    PhoneNumberType.SHARED_COST: DestinationClass.SPECIAL,
    PhoneNumberType.UAN: DestinationClass.SPECIAL,
    PhoneNumberType.PREMIUM_RATE: DestinationClass.PREMIUM,
}
# Abroad the deck prices each prefix, so only premium needs its own class. Domestic VoIP is left
# out because in Australia it includes satellite ranges that a national tariff would underprice.
_FOREIGN_CLASS: dict[int, DestinationClass] = {
    PhoneNumberType.FIXED_LINE: DestinationClass.INTERNATIONAL,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: DestinationClass.INTERNATIONAL,
    PhoneNumberType.MOBILE: DestinationClass.INTERNATIONAL,
    PhoneNumberType.TOLL_FREE: DestinationClass.INTERNATIONAL,
    PhoneNumberType.SHARED_COST: DestinationClass.INTERNATIONAL,
    PhoneNumberType.UAN: DestinationClass.INTERNATIONAL,
    PhoneNumberType.VOIP: DestinationClass.INTERNATIONAL,
    PhoneNumberType.PREMIUM_RATE: DestinationClass.PREMIUM,
}
_LOCAL_CAPABLE = {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def classify_destination(
    number: str,
    external_number: str | None,
    region: str = DEFAULT_REGION,
) -> Destination | NumberRefused:
    """Classify `number` (strict E.164) for a tenant in `region`.

    `external_number` is the E.164 caller ID of the extension placing the call; without one no
    call is local. An invalid external number is a configuration error and raises ValueError.
    """
    tenant_country_code = phonenumbers.country_code_for_region(region.upper())
    if tenant_country_code == 0:
        raise ValueError(f"unknown tenant region {region!r}")
    parsed = _parse_e164(number)
    if isinstance(parsed, NumberRefused):
        return parsed

    number_type = phonenumbers.number_type(parsed)
    type_name = _type_name(number_type)
    domestic = parsed.country_code == tenant_country_code
    destination_class = (_DOMESTIC_CLASS if domestic else _FOREIGN_CLASS).get(number_type)
    if destination_class is None:
        return NumberRefused(
            number, RefusalReason.UNSUPPORTED_NUMBER_TYPE, f"we do not dial {type_name} numbers"
        )
    if (
        domestic
        and number_type in _LOCAL_CAPABLE
        and _same_area(parsed, _parse_external(external_number))
    ):
        destination_class = DestinationClass.LOCAL
    return Destination(
        e164=number,
        destination_class=destination_class,
        country_code=parsed.country_code,  # type: ignore[arg-type]  # set on any parsed number
        region_code=phonenumbers.region_code_for_number(parsed) or "",
        number_type=type_name,
    )


def _parse_e164(number: str) -> PhoneNumber | NumberRefused:
    if not _E164.fullmatch(number):
        return NumberRefused(number, RefusalReason.NOT_E164, "expected +, country code, digits")
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException as error:
        return NumberRefused(number, RefusalReason.INVALID_NUMBER, str(error))
    if not phonenumbers.is_valid_number(parsed):
        return NumberRefused(number, RefusalReason.INVALID_NUMBER, "no such number range")
    return parsed


def _parse_external(external_number: str | None) -> PhoneNumber | None:
    if external_number is None:
        return None
    parsed = _parse_e164(external_number)
    if isinstance(parsed, NumberRefused):
        raise ValueError(f"extension external number {external_number!r}: {parsed.detail}")
    return parsed


def _same_area(number: PhoneNumber, external: PhoneNumber | None) -> bool:
    if external is None or external.country_code != number.country_code:
        return False
    area = _area_code(number)
    return area != "" and area == _area_code(external)


def _area_code(number: PhoneNumber) -> str:
    length = phonenumbers.length_of_national_destination_code(number)
    return phonenumbers.national_significant_number(number)[:length]


_TYPE_NAMES = {
    value: name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper()
}


def _type_name(number_type: int) -> str:
    return _TYPE_NAMES.get(number_type, "unknown")
