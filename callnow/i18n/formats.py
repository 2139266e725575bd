"""Dates, times, time zones, money and numbers the way each language writes them (Babel, CLDR).

Every function takes the language explicitly (a code of `SHIPPED`); `None` means the language
now in use. Times are shown on the owner's clock: pass the owner's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, get_day_names, get_timezone_name
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal

from callnow.i18n.catalogues import active_language


def _locale(language: str | None) -> Locale:
    return Locale.parse(language or active_language())


def date(moment: datetime, tz: ZoneInfo, language: str | None = None) -> str:
    """The day with its weekday: 'Thu, Dec 3, 2026', 'Do., 3. Dez. 2026', '2026年12月3日(木)'."""
    return format_skeleton("yMMMEd", moment.astimezone(tz), locale=_locale(language))


def time(moment: datetime, tz: ZoneInfo, language: str | None = None) -> str:
    """The time of day on that clock: '2:30 PM', '14:30'."""
    return format_time(moment.astimezone(tz), "short", locale=_locale(language))


def date_time(moment: datetime, tz: ZoneInfo, language: str | None = None) -> str:
    """Date and time joined the way the language joins them ('Thu, Dec 3, 2026, 2:30 PM')."""
    locale = _locale(language)
    glue = str(locale.datetime_formats["medium"])
    return glue.replace("{1}", date(moment, tz, str(locale))).replace(
        "{0}", time(moment, tz, str(locale))
    )


def zone_name(moment: datetime, tz: ZoneInfo, language: str | None = None) -> str:
    """The zone's name in the language, for the moment shown (summer time has its own name):
    'Australian Eastern Daylight Time', 'Mitteleuropäische Normalzeit'."""
    return get_timezone_name(moment.astimezone(tz), "long", locale=_locale(language))


def day_name(
    weekday: int,
    language: str | None = None,
    width: Literal["abbreviated", "narrow", "short", "wide"] = "abbreviated",
) -> str:
    """Monday is 0, as in `datetime.weekday()`."""
    return str(get_day_names(width, locale=_locale(language))[weekday])


def short_date(moment: datetime, tz: ZoneInfo, language: str | None = None) -> str:
    """The numeric date: '12/3/26', '03.12.26'."""
    return format_date(moment.astimezone(tz), "short", locale=_locale(language))


def money(amount: Decimal, currency: str, language: str | None = None) -> str:
    """An amount in the rate card's currency: 'A$0.45', '0,45 AU$', '0,45 $AU'."""
    return format_currency(amount, currency, locale=_locale(language))


def number(value: int | float | Decimal, language: str | None = None) -> str:
    """'1,234.5', '1.234,5', '1 234,5'."""
    return format_decimal(value, locale=_locale(language))


def country(region: str, language: str | None = None) -> str:
    """A region's name in the language ('AU' → 'Australien'); the code when CLDR has none."""
    return str(_locale(language).territories.get(region.upper(), region))


def list_of(items: Sequence[str], language: str | None = None) -> str:
    """'A, B, and C', 'A, B und C', 'A、B、C': a list joined the way the language joins it."""
    if not items:
        return ""
    return format_list(list(items), locale=_locale(language))
