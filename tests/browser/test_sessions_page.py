"""The owner's sessions page in a real Chromium: usable at 390 px and 1280 px with no sideways
scroll, no axe-core violations, and its buttons end sessions."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.test_public_form import browser, live_server  # noqa: F401  # fixtures

DEMO_OWNER = ("john@example.com", "callnow-demo")


def log_in(page, base: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(DEMO_OWNER[0])
    page.get_by_label("Password").fill(DEMO_OWNER[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal")


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_sessions_page_fits_and_passes_axe(live_server, browser, width):  # noqa: F811
    # axe-core is injected as a script, which the page's CSP rightly forbids; only the test
    # bypasses it.
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    log_in(other.new_page(), live_server)
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server}/portal/sessions")
    assert page.get_by_role("heading", level=1).inner_text() == "Where you are logged in"
    assert page.get_by_text("(this browser)").count() == 1
    assert no_sideways_scroll(page)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    # Ending the other browser's session leaves this one logged in; "everywhere" ends both.
    page.get_by_role("button", name="Log out this session").click()
    page.wait_for_url(f"{live_server}/portal/sessions")
    assert page.get_by_text("(this browser)").count() == 1
    assert page.get_by_role("button", name="Log out this session").count() == 0
    page.get_by_role("button", name="Log out everywhere").click()
    page.wait_for_url(f"{live_server}/portal/login")
    page.goto(f"{live_server}/portal/sessions")
    assert page.url == f"{live_server}/portal/login"
    context.close()
    other.close()


@pytest.mark.browser
def test_the_log_out_button_ends_the_session(live_server, browser):  # noqa: F811
    page = browser.new_page()
    log_in(page, live_server)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server}/portal/login")
    page.goto(f"{live_server}/portal")
    assert page.url == f"{live_server}/portal/login"
