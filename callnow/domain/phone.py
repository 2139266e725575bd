"""Caller phone numbers: refuse what is not a number, normalise what is to E.164.

Only digits ever leave this module (plus the leading `+` of E.164), so nothing a visitor types can
reach a SIP request line or header as anything but a plain number.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from callnow.i18n import gettext as _

MAX_INPUT_CHARS = 40
MAX_DIGITS = 20
# Characters people type around digits; anything else is refused.
_SEPARATORS = frozenset(" -.()\u00a0")
_DIAL_STRING_CHARS = frozenset("&/;@,#*!|<>\"'\\%")


class InvalidNumber(ValueError):
    """The text is not a callable phone number; the message says why, in plain words."""


class NumberScope(StrEnum):
    NATIONAL = "national"
    INTERNATIONAL = "international"


@dataclass(frozen=True, slots=True)
class VisitorNumber:
    typed: str
    e164: str  # "+61290375678"
    region: str | None  # the number's own region, e.g. "AU", "DO" for +1 809
    scope: NumberScope  # relative to the tenant's region
    number_type: int  # a PhoneNumberType constant: phonenumbers types them as int

    @property
    def digits(self) -> str:
        return self.e164[1:]

    @property
    def national(self) -> str:
        """Digits as dialled inside the number's own country, e.g. 0290375678."""
        parsed = phonenumbers.parse(self.e164)
        return (
            phonenumbers.format_number_for_mobile_dialing(
                parsed, self.region or "ZZ", with_formatting=False
            )
            or self.digits
        )

    @property
    def display(self) -> str:
        """The way a person from the tenant's country would write it."""
        parsed = phonenumbers.parse(self.e164)
        fmt = (
            PhoneNumberFormat.NATIONAL
            if self.scope is NumberScope.NATIONAL
            else PhoneNumberFormat.INTERNATIONAL
        )
        return phonenumbers.format_number(parsed, fmt)


def _ascii_digits(text: str) -> str:
    """Map any Unicode decimal digit (Arabic-Indic, full-width …) to its ASCII digit."""
    out = []
    for char in text:
        if char.isdecimal() and not char.isascii():
            out.append(str(unicodedata.decimal(char)))
        else:
            out.append(char)
    return "".join(out)


def parse_visitor_number(typed: str, region: str) -> VisitorNumber:
    """Parse what a visitor typed in the tenant's region; raise InvalidNumber with a reason."""
    if typed is None or not typed.strip():
        raise InvalidNumber(_("Please enter a phone number."))
    if len(typed) > MAX_INPUT_CHARS:
        raise InvalidNumber(f"A phone number is at most {MAX_INPUT_CHARS} characters.")
    text = _ascii_digits(typed.strip())
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise InvalidNumber(_("The phone number contains control characters."))
    if any(c in _DIAL_STRING_CHARS for c in text):
        raise InvalidNumber(_("The phone number may only contain digits, spaces, ( ) - . and a +."))
    if any(c.isalpha() for c in text):
        raise InvalidNumber(_("The phone number contains letters; please type digits only."))
    body = text[1:] if text.startswith("+") else text
    if any(not (c.isdigit() or c in _SEPARATORS) for c in body):
        raise InvalidNumber(_("The phone number may only contain digits, spaces, ( ) - . and a +."))
    digit_count = sum(c.isdigit() for c in body)
    if digit_count == 0:
        raise InvalidNumber(_("Please enter a phone number."))
    if digit_count > MAX_DIGITS:
        raise InvalidNumber(f"A phone number has at most {MAX_DIGITS} digits.")
    classified = _classify(text, region)
    if classified is None:
        raise InvalidNumber(_("That does not look like a phone number."))
    e164, number_region, number_type = classified
    if number_type == PhoneNumberType.UNKNOWN:
        raise InvalidNumber(_("That phone number is not valid; please check it."))
    scope = NumberScope.NATIONAL if number_region == region else NumberScope.INTERNATIONAL
    return VisitorNumber(
        typed=typed, e164=e164, region=number_region, scope=scope, number_type=number_type
    )


# Numbers classified lately (a visitor sending again, a flood of one victim's number, the status
# page showing it): phonenumbers spends a good part of a millisecond on each.
CLASSIFIED_NUMBERS = 4096


@lru_cache(maxsize=CLASSIFIED_NUMBERS)
def _classify(text: str, region: str | None) -> tuple[str, str | None, int] | None:
    """(E.164, the number's region, its type) of a number as typed in `region`; None when it
    does not parse. The type is UNKNOWN exactly when phonenumbers finds the number invalid
    (`is_valid_number` is `number_type(...) != UNKNOWN` for the number's own region), so one
    classification answers both."""
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(parsed), phonenumbers.number_type(parsed)


def classify_e164(e164: str) -> tuple[str | None, int] | None:
    """(region, type) of an E.164 number, from the same cache as the visitor's numbers; None
    when it does not parse. The type is UNKNOWN for an invalid number."""
    classified = _classify(e164, None)
    return None if classified is None else classified[1:]


def parse_owner_number(typed: str, region: str) -> str:
    """An extension's external number as E.164; looser than a caller's (any valid number)."""
    return parse_visitor_number(typed, region).e164


def e164_prefix(pattern: str, region: str) -> str:
    """Turn a rule prefix typed as `+614`, `614` or national `04` into E.164 digits (`614`)."""
    cleaned = "".join(c for c in _ascii_digits(pattern.strip()) if c not in _SEPARATORS)
    if cleaned.startswith("+"):
        digits = cleaned[1:]
    else:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        national_prefix = (metadata.national_prefix if metadata else None) or ""
        if national_prefix and cleaned.startswith(national_prefix):
            code = phonenumbers.country_code_for_region(region)
            digits = f"{code}{cleaned[len(national_prefix) :]}"
        else:
            digits = cleaned
    if not digits.isdigit() or not 1 <= len(digits) <= MAX_DIGITS:
        raise InvalidNumber("A number prefix is 1 to 20 digits, optionally starting with +.")
    return digits
