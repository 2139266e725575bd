"""How portal pages show times and numbers to the logged-in owner (see domain.local_display).

English keeps the portal's own patterns; every other language gets the order, month names and
clock of its locale from Babel (CLDR), with the zone's abbreviation after it as in English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from markupsafe import Markup, escape

from callnow.domain.local_display import DEFAULT_PATTERN, local_time, national_number
from callnow.i18n import DEFAULT_LANGUAGE, active_language

SHORT_PATTERN = "%d %b %H:%M"
DAY_PATTERN = "%d %b %Y"


def _skeletons(pattern: str) -> list[str]:
    """The CLDR skeletons (date, then clock) that show what a strftime pattern shows."""
    date = "yMMMd" if "%Y" in pattern else "MMMd" if "%d" in pattern else ""
    clock = "Hms" if "%S" in pattern else "Hm" if "%H" in pattern else ""
    return [part for part in (date, clock) if part] or ["yMMMd", "Hm"]


def localised_time(moment: datetime, zone: ZoneInfo, pattern: str, language: str) -> str:
    """`moment` on `zone`'s clock in `language`'s way, the zone's abbreviation after it."""
    if language == DEFAULT_LANGUAGE:
        return local_time(moment, zone, pattern)
    if moment.tzinfo is None:  # stored instants are UTC
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    shown = " ".join(format_skeleton(part, local, locale=language) for part in _skeletons(pattern))
    if "%H" not in pattern:
        return shown
    return f"{shown} {local.tzname()}"


@dataclass(frozen=True)
class OwnerView:
    zone: ZoneInfo
    region: str

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def when(self, moment: datetime | None, pattern: str = DEFAULT_PATTERN) -> str:
        if moment is None:
            return "—"
        return localised_time(moment, self.zone, pattern, active_language())

    def short(self, moment: datetime | None) -> str:
        """Day, month and time: the tables' column."""
        return self.when(moment, SHORT_PATTERN)

    def day(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        language = active_language()
        if language == DEFAULT_LANGUAGE:
            return local_time(moment, self.zone, DAY_PATTERN)
        return localised_time(moment, self.zone, DAY_PATTERN, language)

    def phone(self, e164: str | None) -> Markup:
        """The national form to read, the E.164 form on hover and for scripts to copy."""
        if not e164:
            return Markup("—")
        shown = national_number(e164, self.region)
        return Markup('<span class="phone" title="{0}" data-e164="{0}">{1}</span>').format(
            escape(e164), escape(shown)
        )
