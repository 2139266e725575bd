"""Booking a time in a real Chromium at 390 px and 1280 px: the out-of-hours page's offer, the
booking form and its error state, the booked status page and its cancelled end fit without
sideways scrolling and pass axe-core; the visitor's own time is added where it differs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.test_live_status import Live, live  # noqa: F401 (a fixture)
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.browser.test_visitor_journey import WIDTHS, fits_and_passes_axe

OWNER_ZONE = "Pacific/Kiritimati"  # UTC+14: far from the visitor's clock below
OWNER_ZONE_NAME = "Line Islands Time"  # as an English page names it


def open_tomorrow_only(live: Live) -> None:  # noqa: F811
    from callnow.domain.availability import Window
    from callnow.store import profiles

    tomorrow = (datetime.now(UTC).astimezone(ZoneInfo(OWNER_ZONE)) + timedelta(days=1)).weekday()
    with live.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "john_doe")
        profile.timezone = OWNER_ZONE
        profiles.replace_windows(session, profile, [Window.parse(tomorrow, "09:00", "11:00")])


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_a_visitor_books_a_time_out_of_hours_then_cancels_it(live, browser, width):  # noqa: F811
    open_tomorrow_only(live)
    context = browser.new_context(
        viewport={"width": width, "height": 800}, bypass_csp=True, timezone_id="Europe/London"
    )
    page = context.new_page()
    page.goto(f"{live.base}/callnow/john_doe")
    assert page.get_by_role("button", name="Call me back").count() == 0
    fits_and_passes_axe(page)

    page.get_by_role("link", name="Choose a time").click()
    page.wait_for_url("**/callnow/john_doe/book")
    assert OWNER_ZONE_NAME in page.inner_text("main")
    assert page.locator("#slot option").count() == 8  # 09:00 to 10:45
    assert page.inner_text("#slot-local").startswith("Your time: ")
    fits_and_passes_axe(page)

    # A number that cannot be called: refused, the summary takes the focus.
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("12")
    page.get_by_role("button", name="Book this time").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    fits_and_passes_axe(page)

    page.get_by_label("Time", exact=True).select_option(index=2)
    chosen = page.locator("#slot option:checked").inner_text()
    assert chosen.endswith("9:30\u202fAM")
    page.get_by_label("Your phone number").fill("0290375678")
    page.get_by_role("button", name="Book this time").click()
    page.locator("#booked").wait_for()
    booked = page.inner_text("#booked")
    assert "9:30\u202fAM" in booked and OWNER_ZONE_NAME in booked and "Your time:" in booked
    assert page.inner_text("#steps li[aria-current=step]") == "Booked"
    assert page.inner_text("#status").startswith("Booked for ")
    fits_and_passes_axe(page)

    page.get_by_role("button", name="Cancel my request").click()
    page.locator("#status[data-state=cancelled]").wait_for()
    page.locator("#more-steps").wait_for()
    assert page.get_by_role("link", name="Book a time for a call back").is_visible()
    fits_and_passes_axe(page)
    context.close()
