"""Slots on the owner's wall clock: inside the windows, on the grid, bounded ahead, the skipped
hour of a DST change never offered; and the dial-time window of a booked request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callnow.domain.availability import Window
from callnow.domain.scheduling import (
    BOOKED_REFRESH_MAX_S,
    DIAL_GRACE,
    LIVE_REFRESH_S,
    MAX_DAYS_AHEAD,
    MAX_PER_SLOT,
    SchedulingPolicy,
    SlotProblem,
    candidate_slots,
    dial_time_refusal,
    no_script_refresh_s,
    problem_with,
)

SYDNEY = ZoneInfo("Australia/Sydney")
# Monday 07 Dec 2026 08:00 in Sydney (AEDT, UTC+11).
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=SYDNEY).astimezone(UTC)
WEEKDAYS_9_TO_5 = [Window.parse(day, "09:00", "17:00") for day in range(5)]
POLICY = SchedulingPolicy(enabled=True, days_ahead=7, per_slot=1)


def local(text: str, tz: ZoneInfo = SYDNEY) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def test_slots_lie_inside_the_windows_on_a_quarter_hour_grid():
    slots = candidate_slots(WEEKDAYS_9_TO_5, SYDNEY, NOW, 1)
    assert slots[0] == local("2026-12-07T09:00")
    assert slots[-1] == local("2026-12-07T16:45")  # the last whole slot before 17:00
    assert len(slots) == 32
    assert all(s.astimezone(SYDNEY).minute % 15 == 0 for s in slots)


def test_a_window_across_midnight_gives_slots_on_both_days():
    late = [Window.parse(0, "22:00", "01:00")]
    slots = candidate_slots(late, SYDNEY, NOW, 2)
    assert [s.astimezone(SYDNEY).strftime("%a %H:%M") for s in slots] == [
        f"{day} {t}"
        for day, t in [("Mon", f"{h:02d}:{m:02d}") for h in (22, 23) for m in (0, 15, 30, 45)]
        + [("Tue", f"00:{m:02d}") for m in (0, 15, 30, 45)]
    ]


def test_the_hour_the_clocks_skip_is_never_a_slot():
    # Sydney moves from 02:00 to 03:00 on Sunday 04 Oct 2026.
    before = datetime(2026, 10, 4, 0, 0, tzinfo=SYDNEY).astimezone(UTC)
    all_sunday = [Window(6, 0, 0)]
    slots = candidate_slots(all_sunday, SYDNEY, before, 1)
    hours = {s.astimezone(SYDNEY).hour for s in slots if s.astimezone(SYDNEY).day == 4}
    assert 2 not in hours and {1, 3} <= hours
    skipped = datetime(2026, 10, 4, 2, 30, tzinfo=SYDNEY)
    assert problem_with(skipped, all_sunday, SYDNEY, before, POLICY, 0) is SlotProblem.NOT_A_SLOT


@pytest.mark.parametrize(
    ("slot", "booked", "problem"),
    [
        (local("2026-12-07T09:15"), 0, None),
        (local("2026-12-07T09:15"), 1, SlotProblem.FULL),
        (local("2026-12-07T07:45"), 0, SlotProblem.PAST),
        (local("2026-12-07T08:00"), 0, SlotProblem.PAST),  # now is not bookable
        (local("2026-12-07T18:00"), 0, SlotProblem.OUTSIDE_HOURS),
        (local("2026-12-07T16:50"), 0, SlotProblem.NOT_A_SLOT),
        (local("2026-12-12T10:00"), 0, SlotProblem.OUTSIDE_HOURS),  # a Saturday
        (local("2026-12-15T10:00"), 0, SlotProblem.TOO_FAR),
    ],
)
def test_why_a_slot_cannot_be_booked(slot, booked, problem):
    assert problem_with(slot, WEEKDAYS_9_TO_5, SYDNEY, NOW, POLICY, booked) is problem


def test_a_slot_must_end_inside_the_window_too():
    short = [Window.parse(0, "09:00", "09:20")]
    assert candidate_slots(short, SYDNEY, NOW, 1) == [local("2026-12-07T09:00")]
    assert problem_with(local("2026-12-07T09:15"), short, SYDNEY, NOW, POLICY, 0) is (
        SlotProblem.OUTSIDE_HOURS
    )


def test_the_owner_s_choices_are_bounded():
    assert SchedulingPolicy.bounded(True, 0, 0) == SchedulingPolicy(True, 1, 1)
    assert SchedulingPolicy.bounded(True, 999, 999) == SchedulingPolicy(
        True, MAX_DAYS_AHEAD, MAX_PER_SLOT
    )


def test_a_booked_request_is_dialled_from_its_slot_until_the_grace_runs_out():
    slot = local("2026-12-07T09:00")
    assert dial_time_refusal(slot, slot - timedelta(seconds=1)) is not None
    assert dial_time_refusal(slot, slot) is None
    assert dial_time_refusal(slot, slot + DIAL_GRACE) is None
    assert dial_time_refusal(slot, slot + DIAL_GRACE + timedelta(seconds=1)) is not None


def test_no_slot_is_bookable_where_the_owner_does_not_offer_booking():
    off = SchedulingPolicy(enabled=False, days_ahead=7, per_slot=1)
    slot = local("2026-12-07T09:15")
    assert problem_with(slot, WEEKDAYS_9_TO_5, SYDNEY, NOW, POLICY, 0) is None
    assert problem_with(slot, WEEKDAYS_9_TO_5, SYDNEY, NOW, off, 0) is SlotProblem.NOT_OFFERED


@pytest.mark.parametrize(
    ("until_slot", "refresh_s"),
    [
        (timedelta(days=2), BOOKED_REFRESH_MAX_S),  # far off: a long interval
        (timedelta(seconds=BOOKED_REFRESH_MAX_S + 1), BOOKED_REFRESH_MAX_S),
        (timedelta(minutes=4), 240),  # close: at the slot itself
        (timedelta(seconds=1), LIVE_REFRESH_S),  # never faster than a request for now
        (timedelta(0), LIVE_REFRESH_S),  # the slot has come: the call may move any second
        (-timedelta(minutes=10), LIVE_REFRESH_S),
    ],
)
def test_a_booked_status_page_without_scripts_reloads_at_its_slot(until_slot, refresh_s):
    slot = local("2026-12-07T09:15")
    assert no_script_refresh_s(slot, slot - until_slot) == refresh_s


def test_a_request_for_now_reloads_every_few_seconds_without_scripts():
    assert no_script_refresh_s(None, NOW) == LIVE_REFRESH_S == 3
