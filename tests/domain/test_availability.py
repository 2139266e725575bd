from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callnow.domain.availability import (
    InvalidWindow,
    Window,
    describe_hours,
    is_available,
    next_opening,
)

SYDNEY = ZoneInfo("Australia/Sydney")
MON, TUE, SAT, SUN = 0, 1, 5, 6


def at(*args) -> datetime:
    """A Sydney wall-clock moment."""
    return datetime(*args, tzinfo=SYDNEY)


office_hours = [Window.parse(day, "09:00", "17:00") for day in range(5)]


def test_no_windows_means_always_available():
    assert is_available([], at(2026, 11, 29, 3, 0), SYDNEY)


def test_inside_and_outside_office_hours():
    assert is_available(office_hours, at(2026, 11, 23, 9, 0), SYDNEY)  # Monday 09:00
    assert is_available(office_hours, at(2026, 11, 23, 16, 59), SYDNEY)
    assert not is_available(office_hours, at(2026, 11, 23, 17, 0), SYDNEY)  # end is exclusive
    assert not is_available(office_hours, at(2026, 11, 28, 12, 0), SYDNEY)  # Saturday


def test_the_check_uses_the_profile_time_zone_not_utc():
    monday_9am_sydney_in_utc = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
    assert is_available(office_hours, monday_9am_sydney_in_utc, SYDNEY)
    assert not is_available(office_hours, monday_9am_sydney_in_utc, ZoneInfo("UTC"))


def test_an_overnight_window_runs_into_the_next_day():
    friday_night = [Window.parse(4, "22:00", "02:00")]
    assert is_available(friday_night, at(2026, 11, 27, 23, 30), SYDNEY)  # Friday
    assert is_available(friday_night, at(2026, 11, 28, 1, 59), SYDNEY)  # Saturday morning
    assert not is_available(friday_night, at(2026, 11, 28, 2, 0), SYDNEY)
    assert not is_available(friday_night, at(2026, 11, 27, 21, 59), SYDNEY)
    assert not is_available(friday_night, at(2026, 11, 29, 1, 0), SYDNEY)  # Sunday: not Fri


def test_a_sunday_overnight_window_wraps_to_monday():
    sunday_night = [Window.parse(SUN, "23:00", "01:00")]
    assert is_available(sunday_night, at(2026, 11, 30, 0, 30), SYDNEY)  # Monday 00:30


def test_start_equal_to_end_is_a_whole_day_from_the_start():
    window = Window.parse(SAT, "00:00", "00:00")
    assert window.length_minutes == 24 * 60
    assert is_available([window], at(2026, 11, 28, 23, 59), SYDNEY)
    assert not is_available([window], at(2026, 11, 29, 0, 0), SYDNEY)


def test_dst_start_day_in_sydney_keeps_wall_clock_hours():
    # Clocks go from 02:00 to 03:00 on Sunday 4 October 2026.
    early = [Window.parse(SUN, "01:00", "04:00")]
    just_after_jump = datetime(2026, 10, 3, 16, 0, tzinfo=UTC)  # 03:00 AEDT
    assert just_after_jump.astimezone(SYDNEY).hour == 3
    assert is_available(early, just_after_jump, SYDNEY)
    assert not is_available(early, datetime(2026, 10, 3, 17, 0, tzinfo=UTC), SYDNEY)  # 04:00


def test_dst_end_day_in_sydney_covers_the_repeated_hour():
    # Clocks go from 03:00 back to 02:00 on Sunday 5 April 2026: 02:30 happens twice.
    window = [Window.parse(SUN, "02:00", "03:00")]
    first_0230 = datetime(2026, 4, 4, 15, 30, tzinfo=UTC)  # 02:30 AEDT
    second_0230 = datetime(2026, 4, 4, 16, 30, tzinfo=UTC)  # 02:30 AEST
    assert first_0230.astimezone(SYDNEY).hour == 2 == second_0230.astimezone(SYDNEY).hour
    assert is_available(window, first_0230, SYDNEY)
    assert is_available(window, second_0230, SYDNEY)


def test_next_opening_is_the_next_window_start():
    saturday_noon = at(2026, 11, 28, 12, 0)
    assert next_opening(office_hours, saturday_noon, SYDNEY) == at(2026, 11, 30, 9, 0)
    assert next_opening([], saturday_noon, SYDNEY) is None


def test_hours_are_described_in_weekday_order():
    windows = [Window.parse(TUE, "13:00", "17:00"), Window.parse(MON, "22:00", "02:00")]
    assert describe_hours(windows) == ["Mon 22:00–02:00 (next day)", "Tue 13:00–17:00"]


@pytest.mark.parametrize(("start", "end"), [("25:00", "26:00"), ("9", "17:00"), ("09:60", "10:00")])
def test_malformed_times_are_refused(start, end):
    with pytest.raises(InvalidWindow):
        Window.parse(MON, start, end)


def test_a_weekday_outside_the_week_is_refused():
    with pytest.raises(InvalidWindow):
        Window(7, 0, 60)


def test_a_whole_day_window_reads_as_all_day():
    assert Window.parse(MON, "00:00", "24:00").describe() == "Mon all day"
    assert Window.parse(MON, "00:00", "00:00").describe() == "Mon all day"
