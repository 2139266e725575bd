"""Availability windows: when an owner takes callback requests, on their own wall clock.

A window is a weekday plus a start and end time of day in the profile's time zone. An end at or
before the start runs past midnight into the next day (22:00–02:00); start equal to end is the
whole 24 hours from the start. Comparing on the local wall clock keeps DST change days right: a
09:00–17:00 window is 09:00–17:00 on the day the clocks move, however many hours that is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from callnow.i18n import gettext as _
from callnow.i18n.formats import day_name

# Monday first, as `datetime.weekday()`; shown through `day_name` in the reader's language.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_DAY = 24 * 60


class InvalidWindow(ValueError):
    """A window that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Window:
    weekday: int  # 0 = Monday
    start_minute: int  # minutes after local midnight, 0..1439
    end_minute: int  # 0..1440; <= start means the window ends on the next day

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise InvalidWindow(_("The weekday must be Monday to Sunday."))
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise InvalidWindow(_("A window starts between 00:00 and 23:59."))
        if not 0 <= self.end_minute <= MINUTES_PER_DAY:
            raise InvalidWindow(_("A window ends between 00:00 and 24:00."))

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute <= self.start_minute

    @property
    def length_minutes(self) -> int:
        if self.crosses_midnight:
            return MINUTES_PER_DAY - self.start_minute + self.end_minute
        return self.end_minute - self.start_minute

    def describe(self) -> str:
        day = day_name(self.weekday)
        if self.start_minute == 0 and self.end_minute in (0, MINUTES_PER_DAY):
            return _("%(day)s all day") % {"day": day}
        values = {
            "day": day,
            "start": _clock(self.start_minute),
            "end": _clock(self.end_minute % MINUTES_PER_DAY),
        }
        if self.crosses_midnight and self.end_minute:
            return _("%(day)s %(start)s–%(end)s (next day)") % values
        return _("%(day)s %(start)s–%(end)s") % values

    @classmethod
    def parse(cls, weekday: int, start: str, end: str) -> Window:
        return cls(weekday, _minutes(start), _minutes(end, allow_24=True))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _not_a_time(text: str) -> str:
    return _("'%(text)s' is not a time of day like 09:30.") % {"text": text}


def _minutes(text: str, allow_24: bool = False) -> int:
    try:
        hours, minutes = text.strip().split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError as exc:
        raise InvalidWindow(_not_a_time(text)) from exc
    if not 0 <= int(minutes) < 60 or not 0 <= value <= (MINUTES_PER_DAY if allow_24 else 1439):
        raise InvalidWindow(_not_a_time(text))
    return value


def is_available(windows: Iterable[Window], now: datetime, tz: ZoneInfo) -> bool:
    """True when `now` (aware) falls inside a window; no windows at all means always available."""
    windows = list(windows)
    if not windows:
        return True
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    today = local.weekday()
    yesterday = (today - 1) % 7
    for window in windows:
        if window.weekday == today:
            if window.crosses_midnight:
                if minute >= window.start_minute:
                    return True
            elif window.start_minute <= minute < window.end_minute:
                return True
        elif window.weekday == yesterday and window.crosses_midnight and minute < window.end_minute:
            return True
    return False


def next_opening(windows: Sequence[Window], now: datetime, tz: ZoneInfo) -> datetime | None:
    """The next moment a window opens after `now`, as an aware local datetime."""
    local = now.astimezone(tz)
    candidates = []
    for day_offset in range(8):
        day = (local + timedelta(days=day_offset)).date()
        for window in windows:
            if window.weekday != day.weekday():
                continue
            start = datetime.combine(day, time(window.start_minute // 60, window.start_minute % 60))
            start = start.replace(tzinfo=tz)
            if start > local:
                candidates.append(start)
    return min(candidates, default=None)


def describe_hours(windows: Sequence[Window]) -> list[str]:
    return [w.describe() for w in sorted(windows, key=lambda w: (w.weekday, w.start_minute))]
