"""How portal pages show times and numbers to the logged-in owner (see domain.local_display)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from callnow.domain.local_display import DEFAULT_PATTERN, local_time, national_number


@dataclass(frozen=True)
class OwnerView:
    zone: ZoneInfo
    region: str

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def when(self, moment: datetime | None, pattern: str = DEFAULT_PATTERN) -> str:
        return "—" if moment is None else local_time(moment, self.zone, pattern)

    def phone(self, e164: str | None) -> Markup:
        """The national form to read, the E.164 form on hover and for scripts to copy."""
        if not e164:
            return Markup("—")
        shown = national_number(e164, self.region)
        return Markup('<span class="phone" title="{0}" data-e164="{0}">{1}</span>').format(
            escape(e164), escape(shown)
        )
