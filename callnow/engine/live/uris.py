"""Request URIs and caller IDs for the two legs, built only from validated digits.

The numbers come from the web (the visitor typed theirs), so they are checked here, right
before they become part of a SIP URI: a value that is not plain digits (E.164 with its '+'
for the trunk side, 1-15 digits for an internal extension) never reaches the SIP stack.
Templates come from configuration and are filled with `str.replace`, not `str.format`, so a
template with other braces in it cannot raise or pull in attributes.
"""

from __future__ import annotations

import re

import phonenumbers

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
INTERNAL = re.compile(r"[0-9]{1,15}")


class UnsafeNumber(ValueError):
    """A number that is not plain digits; refused before anything is sent."""


def check_e164(number: str, what: str = "number") -> str:
    if not isinstance(number, str) or not E164.fullmatch(number):
        raise UnsafeNumber(f"{what} must be E.164 (+ and digits): {number!r}")
    return number


def check_internal(number: str) -> str:
    if not isinstance(number, str) or not INTERNAL.fullmatch(number):
        raise UnsafeNumber(f"internal number must be 1-15 digits: {number!r}")
    return number


def owner_uri(template: str, internal: str) -> str:
    """`sip:{internal}@pbx:5080` filled with the extension's internal number."""
    return template.replace("{internal}", check_internal(internal))


def national_digits(e164: str, region: str) -> str:
    """The number as dialled inside `region` (+61290375678 in AU -> 0290375678).

    A number of another country has no national form there (it would need the region's
    international prefix, which is the trunk's business): refused rather than misdialled.
    """
    parsed = phonenumbers.parse(check_e164(e164))
    if phonenumbers.region_code_for_number(parsed) != region.upper():
        raise UnsafeNumber(f"{e164!r} is not a number of {region}; no national form")
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = "".join(ch for ch in national if ch.isdigit())
    if not digits:
        raise UnsafeNumber(f"no national form for {e164!r}")
    return digits


def trunk_uri(template: str, e164: str, region: str = "AU") -> str:
    """The trunk template with `{e164}`, `{national}` and `{digits}` filled in."""
    check_e164(e164)
    uri = template.replace("{e164}", e164).replace("{digits}", e164[1:])
    if "{national}" in uri:
        uri = uri.replace("{national}", national_digits(e164, region))
    return uri


def caller_id_as(e164: str, form: str, region: str) -> str:
    """The caller ID in the trunk's format: `e164` (+61299990000), `e164_no_plus`
    (61299990000) or `national` (0299990000; numbers of `region` only)."""
    check_e164(e164, "caller ID")
    if form == "e164":
        return e164
    if form == "e164_no_plus":
        return e164[1:]
    if form == "national":
        return national_digits(e164, region)
    raise ValueError(f"unknown caller ID format {form!r}")
