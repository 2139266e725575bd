"""The status page's message form in a real Chromium at 390 px and 1280 px: the form, its error
state and the sent message fit without sideways scrolling and pass axe-core."""

from __future__ import annotations

import pytest

from callnow.domain.left_message import MAX_CHARS
from callnow.domain.request_state import RequestState
from tests.browser.test_live_status import Live, live  # noqa: F401 (a fixture)
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.browser.test_visitor_journey import (
    WIDTHS,
    fits_and_passes_axe,
    new_context,
    request_in,
)


def stored_message(live: Live, token: str) -> str | None:  # noqa: F811
    from callnow.store import requests as request_store

    with live.sessions() as session:
        return request_store.by_token(session, token).message


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_a_visitor_leaves_a_message_after_a_decline(live, browser, width):  # noqa: F811
    context = new_context(browser, width)
    page = context.new_page()
    token = request_in(live, RequestState.OWNER_DECLINED)
    page.goto(f"{live.base}/callnow/john_doe/requests/{token}")
    box = page.get_by_label(f"Your message (at most {MAX_CHARS} characters)")
    assert box.is_visible()
    assert "John Doe sees it with your name and number" in page.inner_text("#message")
    fits_and_passes_axe(page)

    # Blank: refused, the summary takes the focus and the title says so.
    box.fill("   ")
    page.get_by_role("button", name="Send message").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert "Please write a message." in summary.inner_text()
    fits_and_passes_axe(page)

    # The longest message, one unbroken word: it wraps instead of widening the page.
    word = "w" * MAX_CHARS
    page.get_by_label(f"Your message (at most {MAX_CHARS} characters)").fill(word + "x")
    assert page.get_by_role("textbox").input_value() == word  # the field stops at the limit
    page.get_by_role("button", name="Send message").click()
    page.locator("#message-sent").wait_for()
    assert page.title() == "Your call back – CallNow"
    assert page.locator("blockquote.message-text").inner_text() == word
    assert page.get_by_role("button", name="Send message").count() == 0
    fits_and_passes_axe(page)
    assert stored_message(live, token) == word
    context.close()


@pytest.mark.browser
def test_no_message_form_while_the_request_is_still_in_progress(live, browser):  # noqa: F811
    context = new_context(browser, 390)
    page = context.new_page()
    for state in (RequestState.QUEUED, RequestState.CONNECTED, RequestState.COMPLETED):
        token = request_in(live, state)
        page.goto(f"{live.base}/callnow/john_doe/requests/{token}")
        assert page.locator("#message").count() == 0, state
    context.close()


def close_page(live: Live) -> None:  # noqa: F811
    from callnow.domain.availability import Window
    from callnow.store import profiles

    with live.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "john_doe")
        profile.timezone = "Pacific/Kiritimati"
        # One minute a week, so "now" is almost surely outside it.
        profiles.replace_windows(session, profile, [Window.parse(6, "03:00", "03:01")])


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_out_of_hours_the_page_takes_a_message(live, browser, width):  # noqa: F811
    close_page(live)
    context = new_context(browser, width)
    page = context.new_page()
    page.goto(f"{live.base}/callnow/john_doe")
    assert page.get_by_role("button", name="Call me back").count() == 0
    fits_and_passes_axe(page)

    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("12")
    page.get_by_label(f"Your message (at most {MAX_CHARS} characters)").fill("Back at 9?")
    page.get_by_role("button", name="Send message").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    fits_and_passes_axe(page)

    page.get_by_label("Your phone number").fill("0290375678")
    page.get_by_role("button", name="Send message").click()
    page.locator("#message-sent").wait_for()
    assert page.locator("blockquote.message-text").inner_text() == "Back at 9?"
    fits_and_passes_axe(page)
    context.close()
