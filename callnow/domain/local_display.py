"""Times and numbers as an owner reads them: on their own wall clock with the zone named, and
phone numbers the way people in their country write them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

DEFAULT_PATTERN = "%d %b %Y %H:%M"


def local_time(moment: datetime, zone: ZoneInfo, pattern: str = DEFAULT_PATTERN) -> str:
    """`moment` on the wall clock of `zone`, followed by the zone's abbreviation in force then
    (AEST or AEDT on a daylight-saving change day), so a reader never has to guess."""
    if moment.tzinfo is None:  # stored instants are UTC
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local.strftime(pattern)} {local.tzname()}"


def national_number(e164: str, region: str) -> str:
    """An E.164 number in national format when it belongs to `region`, international format
    otherwise; the text unchanged when it is not a number at all."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except NumberParseException:
        return e164
    same_country = phonenumbers.region_code_for_number(parsed) == region.upper()
    fmt = PhoneNumberFormat.NATIONAL if same_country else PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, fmt)
