"""The visitor's pages in a real Chromium at 390 px and 1280 px: the public page, its error
state and the status page in every state fit without sideways scrolling and pass axe-core;
after a refused submit the error summary has the focus and the title says so."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from callnow.domain.request_state import RequestState
from tests.browser.test_live_status import Live, live, queued_request  # noqa: F401 (a fixture)
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)

WIDTHS = [390, 1280]


def fits_and_passes_axe(page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def request_in(live: Live, state: RequestState, decision: str = "confirm") -> str:  # noqa: F811
    from callnow.store import requests as request_store

    token = queued_request(live, decision)
    with live.sessions() as session, session.begin():
        request_store.by_token(session, token).state = state.value
    return token


def new_context(browser, width):  # noqa: F811
    # axe-core is injected as a script, which the pages' CSP rightly forbids; only the test
    # bypasses it.
    return browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_public_page_and_its_error_state(live, browser, width):  # noqa: F811
    context = new_context(browser, width)
    page = context.new_page()
    page.goto(f"{live.base}/callnow/john_doe")
    assert page.title() == "Call back from John Doe – CallNow"
    assert "e.g. 0412 345 678" in page.inner_text("#number-hint")
    assert "John Doe sees your name and number" in page.inner_text("form")
    fits_and_passes_axe(page)

    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("+44 20 7946 0958")
    page.get_by_role("button", name="Call me back").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert "numbers in Australia only" in summary.inner_text()
    fits_and_passes_axe(page)
    # The summary's link leads to the field to correct.
    summary.get_by_role("link").click()
    assert page.evaluate("location.hash") == "#number"
    context.close()


FINAL_NEXT_STEP = {
    RequestState.COMPLETED: "Back to John Doe's page",
    RequestState.OWNER_DECLINED: "Try again later",
}


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_every_status_page_state(live, browser, width):  # noqa: F811
    context = new_context(browser, width)
    page = context.new_page()
    cases = [(state, "confirm") for state in RequestState] + [(RequestState.QUEUED, "confirm_web")]
    for state, decision in cases:
        token = request_in(live, state, decision)
        page.goto(f"{live.base}/callnow/john_doe/requests/{token}")
        status = page.locator("#status")
        assert status.get_attribute("data-state") == state.value
        current = page.locator("#steps li[aria-current=step]")
        assert current.count() == 1
        if decision == "confirm_web":
            assert "Waiting for John Doe to accept; this can take up to 10 minutes." in (
                status.inner_text()
            )
        # The owner's clock, its zone named in the page's language (summer or standard time).
        assert re.search(
            r"\(Australian Eastern (Daylight|Standard) Time\)", page.inner_text("dl.facts")
        )
        next_step = page.locator("#next-step")
        if state in FINAL_NEXT_STEP or current.inner_text() == "Finished":
            assert next_step.is_visible(), state
            link = next_step.get_by_role("link")
            assert link.get_attribute("href") == "/callnow/john_doe"
            if state in FINAL_NEXT_STEP:
                assert link.inner_text() == FINAL_NEXT_STEP[state]
        else:
            assert next_step.is_hidden(), state
        fits_and_passes_axe(page)
    context.close()


@pytest.mark.browser
def test_a_preview_fetch_places_nothing_while_a_click_places_the_request(live, browser):  # noqa: F811
    from sqlalchemy import select

    from callnow.store.models import CallRequest

    def stored() -> int:
        with live.sessions() as session:
            return len(session.scalars(select(CallRequest)).all())

    url = f"{live.base}/callnow/john_doe?name=Mary&number=0290375678"
    context = browser.new_context()
    for headers in ({"User-Agent": "WhatsApp/2.23.20.0 A"}, {"Sec-Purpose": "prefetch"}):
        preview = context.request.get(url, headers=headers, max_redirects=0)
        assert preview.status == 200
        assert context.request.head(url).status == 200
    assert stored() == 0
    page = context.new_page()
    page.goto(url)  # a person's click: one step to the status page
    assert "/callnow/john_doe/requests/" in page.url
    assert stored() == 1
    context.close()
