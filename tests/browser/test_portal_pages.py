"""Every portal page in a real Chromium, on a phone and on a desktop: nothing wider than the
screen and no axe-core violations (axe-core is the copy the axe-playwright package ships, run
in the page, so nothing is fetched). Also the hours editor's script and the HTML edges."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from callnow.store.provisioning import (
    DEMO_ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    DEMO_OWNER_EMAIL,
    DEMO_OWNER_PASSWORD,
)
from tests.browser.test_public_form import browser, live_server  # noqa: F401  # fixtures

WIDTHS = (360, 390, 1280)
OWNER_PAGES = (
    "/portal",
    "/portal/pending",
    "/portal/requests",
    "/portal/billing",
    "/portal/webhooks",
    "/portal/api-keys",
    "/portal/notifications",
    "/portal/sessions",
    "/portal/profiles/john_doe/preferences",
    "/portal/profiles/john_doe/rules",
    "/portal/nothing-here",
)
ADMIN_PAGES = ("/portal", "/portal/billing", "/portal/billing/platform")


def log_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal")


def check(page, url: str, width: int) -> list[str]:
    """What is wrong with the page at this width: overflow and axe-core violations."""
    problems = []
    page.goto(url)
    document_width = page.evaluate("document.documentElement.scrollWidth")
    if document_width > width:
        problems.append(f"{url} at {width}px is {document_width}px wide")
    results = Axe().run(page)
    if results.violations_count:
        problems.append(f"{url} at {width}px: {results.generate_report()}")
    return problems


def some_content(page, base: str) -> None:
    """A request, a name-based rule and hours, so tables, warnings and rows are on the pages."""
    page.goto(f"{base}/callnow/john_doe")
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("02 9037 5678")
    page.get_by_role("button", name="Call me back").click()
    page.wait_for_url(f"{base}/callnow/john_doe/requests/*")
    page.goto(f"{base}/portal/profiles/john_doe/rules")
    page.locator("#action-new").select_option("accept")
    page.locator("#name_match-new").select_option("contains")
    page.locator("#name_value-new").fill("VIP")
    page.get_by_role("button", name="Add rule").click()
    page.locator("#number_match-new").select_option("prefix")
    page.locator("#number_value-new").fill("04")
    page.locator("#action-new").select_option("reject")
    page.get_by_role("button", name="Add rule").click()


@pytest.mark.browser
def test_every_portal_page_fits_a_phone_and_a_desktop_and_passes_axe(live_server, browser):  # noqa: F811
    problems: list[str] = []
    for email, password, paths in (
        (DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, OWNER_PAGES),
        (DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, ADMIN_PAGES),
    ):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            problems += check(page, f"{live_server}/portal/login", width)
            problems += check(page, f"{live_server}/portal/reset", width)
        log_in(page, live_server, email, password)
        if email == DEMO_OWNER_EMAIL:
            some_content(page, live_server)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                problems += check(page, f"{live_server}{path}", width)
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_the_hours_editor_adds_and_removes_windows_and_round_trips_them(live_server, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 900})
    log_in(page, live_server, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)
    page.goto(f"{live_server}/portal/profiles/john_doe/preferences")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    tuesday = page.get_by_role("group", name="Tuesday")
    tuesday.get_by_role("button", name="Add a Tuesday window").click()
    tuesday.locator("#win_1_0_start").fill("08:00")
    tuesday.locator("#win_1_0_end").fill("12:00")
    tuesday.get_by_role("button", name="Add a Tuesday window").click()
    tuesday.locator("#win_1_1_start").fill("13:00")
    tuesday.locator("#win_1_1_end").fill("17:30")
    saturday = page.get_by_role("group", name="Saturday")
    saturday.get_by_role("button", name="Add a Saturday window").click()
    saturday.locator("#win_5_0_start").fill("22:00")
    saturday.locator("#win_5_0_end").fill("02:00")
    # A window added and removed again is not saved.
    monday = page.get_by_role("group", name="Monday")
    monday.get_by_role("button", name="Add a Monday window").click()
    monday.locator("#win_0_0_start").fill("09:00")
    monday.get_by_role("button", name="Remove Monday window 1").click()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Saved."

    page.reload()
    assert page.locator("#win_1_0_start").input_value() == "08:00"
    assert page.locator("#win_1_1_end").input_value() == "17:30"
    assert page.locator("#win_5_0_start").input_value() == "22:00"
    assert page.locator("#win_5_0_end").input_value() == "02:00"
    assert page.locator("#win_0_0_start").input_value() == ""
    assert not page.locator("#win_0_0_start").is_visible()
    assert page.get_by_label("Time zone").input_value() == "Europe/Berlin"
    page.goto(f"{live_server}/callnow/john_doe")
    text = page.content()
    assert "Tue 08:00–12:00" in text and "Tue 13:00–17:30" in text
    assert "Sat 22:00–02:00 (next day)" in text
    assert "Mon 09:00" not in text


@pytest.mark.browser
def test_the_edges_answer_html_and_the_docs_load_from_this_host(live_server, browser):  # noqa: F811
    page = browser.new_page()
    for path in ("/", "/portal/x"):
        response = page.goto(f"{live_server}{path}")
        assert response is not None
        assert response.headers["content-type"].startswith("text/html"), path
    assert page.get_by_role("heading", level=1).inner_text() == "Not found"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "CallNow Call API" in page.locator(".swagger-ui .info .title").inner_text()
    html = page.content()
    assert not re.findall(r"""(?:src|href)=["']https?://(?!127\.0\.0\.1)""", html)
    assert requested and all(url.startswith(live_server) for url in requested), requested
