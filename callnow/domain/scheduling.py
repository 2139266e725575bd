"""Scheduled callbacks: the slots a visitor may book inside the owner's windows, and why a
chosen slot cannot be booked.

Slots lie on the owner's wall clock, every `SLOT_MINUTES` from midnight, and a slot is offered
only when the whole of it falls inside a window. Times are compared as aware datetimes; a local
time that does not exist (the hour the clocks skip) is never a slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from callnow.domain.availability import Window, is_available

SLOT_MINUTES = 15
SLOT = timedelta(minutes=SLOT_MINUTES)
# How far ahead an owner may let visitors book, and how many bookings one slot may take.
MIN_DAYS_AHEAD, MAX_DAYS_AHEAD, DEFAULT_DAYS_AHEAD = 1, 30, 7
MIN_PER_SLOT, MAX_PER_SLOT, DEFAULT_PER_SLOT = 1, 20, 1
# A booked call not started this long after its slot began is not placed any more: the visitor
# expects it at the time they chose, not hours later when an engine comes back.
DIAL_GRACE = timedelta(minutes=30)
# Without scripts a status page reloads itself (a meta refresh): every few seconds while the
# call may move, and for a booking waiting for its slot, at the slot itself but at least this
# often, so a page left open (or a browser that slept through its timer) is never long stale.
LIVE_REFRESH_S = 3
BOOKED_REFRESH_MAX_S = 600
# The form lists at most this many slots (the earliest): a page open around the clock would
# otherwise list hundreds.
MAX_LISTED = 200


class SlotProblem(StrEnum):
    NOT_OFFERED = "not_offered"  # the owner does not offer booking
    NOT_A_SLOT = "not_a_slot"  # missing, unreadable, or not on the slot grid
    PAST = "past"
    TOO_FAR = "too_far"
    OUTSIDE_HOURS = "outside_hours"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class SchedulingPolicy:
    """An owner's choices, bounded."""

    enabled: bool
    days_ahead: int
    per_slot: int

    @classmethod
    def bounded(cls, enabled: bool, days_ahead: int, per_slot: int) -> SchedulingPolicy:
        return cls(
            enabled,
            min(max(days_ahead, MIN_DAYS_AHEAD), MAX_DAYS_AHEAD),
            min(max(per_slot, MIN_PER_SLOT), MAX_PER_SLOT),
        )


def _on_grid(local: datetime) -> bool:
    return local.second == 0 and local.microsecond == 0 and local.minute % SLOT_MINUTES == 0


def _inside(windows: Sequence[Window], start: datetime, tz: ZoneInfo) -> bool:
    """The whole slot lies inside the owner's windows (its first and its last minute)."""
    last_minute = start + SLOT - timedelta(minutes=1)
    return is_available(windows, start, tz) and is_available(windows, last_minute, tz)


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    """False for a wall-clock time the clocks skip (it does not come back unchanged)."""
    back = local.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def problem_with(
    slot: datetime,
    windows: Sequence[Window],
    tz: ZoneInfo,
    now: datetime,
    policy: SchedulingPolicy,
    booked: int,
) -> SlotProblem | None:
    """Why `slot` (aware) cannot be booked now with `booked` bookings already in it, or None."""
    if not policy.enabled:
        return SlotProblem.NOT_OFFERED
    local = slot.astimezone(tz)
    if not _on_grid(local) or not _exists(local.replace(tzinfo=tz), tz):
        return SlotProblem.NOT_A_SLOT
    if slot <= now:
        return SlotProblem.PAST
    if slot > now + timedelta(days=policy.days_ahead):
        return SlotProblem.TOO_FAR
    if not _inside(windows, slot, tz):
        return SlotProblem.OUTSIDE_HOURS
    if booked >= policy.per_slot:
        return SlotProblem.FULL
    return None


def candidate_slots(
    windows: Sequence[Window], tz: ZoneInfo, now: datetime, days_ahead: int
) -> list[datetime]:
    """Every slot (UTC) after `now` and within `days_ahead` days that lies inside a window,
    earliest first; whether it is full is the caller's to say."""
    local_now = now.astimezone(tz)
    until = now + timedelta(days=days_ahead)
    found: list[datetime] = []
    for offset in range(days_ahead + 1):
        day: date = local_now.date() + timedelta(days=offset)
        for minute in range(0, 24 * 60, SLOT_MINUTES):
            local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
            if not _exists(local, tz):
                continue
            start = local.astimezone(UTC)
            if start <= now or start > until:
                continue
            if _inside(windows, start, tz):
                found.append(start)
    return found


def dial_time_refusal(scheduled_for: datetime, now: datetime) -> str | None:
    """Why a booked request may not be dialled at `now`: too early (never claimed then) or so
    late that the visitor no longer expects the call."""
    if now < scheduled_for:
        return "the booked time has not come"
    if now > scheduled_for + DIAL_GRACE:
        return "the booked time has passed"
    return None


def no_script_refresh_s(scheduled_for: datetime | None, now: datetime) -> int:
    """Seconds until a status page without scripts reloads itself: every few seconds for a
    request that may move now; for a booking before its slot, at the slot (nothing happens
    before it), at most `BOOKED_REFRESH_MAX_S` away."""
    if scheduled_for is None:
        return LIVE_REFRESH_S
    until = int((scheduled_for - now).total_seconds())
    return min(max(until, LIVE_REFRESH_S), BOOKED_REFRESH_MAX_S)
