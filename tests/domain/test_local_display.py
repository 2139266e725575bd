"""Times shown in the owner's zone, named; numbers in the owner's national format."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callnow.domain.local_display import local_time, national_number

SYDNEY = ZoneInfo("Australia/Sydney")


def test_a_sydney_daylight_saving_start_day_shows_both_offsets_with_their_names():
    # Clocks went from 02:00 AEST to 03:00 AEDT on Sunday 4 October 2026.
    before = datetime(2026, 10, 3, 15, 30, tzinfo=UTC)
    after = datetime(2026, 10, 3, 16, 30, tzinfo=UTC)
    assert local_time(before, SYDNEY) == "04 Oct 2026 01:30 AEST"
    assert local_time(after, SYDNEY) == "04 Oct 2026 03:30 AEDT"


def test_a_daylight_saving_end_day_tells_the_repeated_hour_apart():
    # Clocks went back from 03:00 AEDT to 02:00 AEST on Sunday 5 April 2026.
    first = datetime(2026, 4, 4, 15, 30, tzinfo=UTC)
    second = datetime(2026, 4, 4, 16, 30, tzinfo=UTC)
    assert local_time(first, SYDNEY, "%H:%M") == "02:30 AEDT"
    assert local_time(second, SYDNEY, "%H:%M") == "02:30 AEST"


def test_a_naive_stored_instant_is_read_as_utc():
    assert local_time(datetime(2026, 7, 1, 0, 0), SYDNEY, "%H:%M") == "10:00 AEST"


def test_a_european_zone_is_named_too():
    berlin = ZoneInfo("Europe/Berlin")
    assert local_time(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), berlin, "%H:%M") == "01:30 CET"
    assert local_time(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), berlin, "%H:%M") == "03:30 CEST"


def test_numbers_are_national_at_home_and_international_abroad():
    assert national_number("+61290371234", "AU") == "(02) 9037 1234"
    assert national_number("+61412345678", "au") == "0412 345 678"
    assert national_number("+442079460000", "AU") == "+44 20 7946 0000"
    assert national_number("not a number", "AU") == "not a number"
