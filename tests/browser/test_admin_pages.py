"""The guarded admin in a real Chromium: its own CSP blocks nothing sqladmin needs, the login
and edit forms carry their CSRF tokens, and logging out is a confirmed POST."""

from __future__ import annotations

import pytest

from tests.browser.test_public_form import browser, live_server  # noqa: F401  # fixtures

DEMO_ADMIN = ("admin@example.com", "callnow-admin")


@pytest.mark.browser
def test_an_admin_logs_in_edits_and_logs_out_under_the_csp(live_server, browser):  # noqa: F811
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Email").fill(DEMO_ADMIN[0])
    page.get_by_label("Password").fill(DEMO_ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/admin/")
    page.goto(f"{live_server}/admin/tenant/list")
    page.goto(f"{live_server}/admin/tenant/edit/1")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{live_server}/admin/tenant/list")
    page.goto(f"{live_server}/admin/sessions")
    assert page.get_by_text(DEMO_ADMIN[0]).count() >= 1
    page.goto(f"{live_server}/admin/logout")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server}/admin/login")
    page.goto(f"{live_server}/admin/tenant/list")
    assert page.url == f"{live_server}/admin/login"
    assert blocked == []


ADMIN_LISTS = (
    "tenant",
    "user",
    "extension",
    "profile",
    "call-request",
    "call-leg",
    "charge-row",
    "audit-entry",
    "do-not-call",
    "budget-row",
)


def _ask_for_a_callback(page, base: str) -> None:
    """A real request, so the request list and its page have a row, history and all."""
    page.goto(f"{base}/callnow/john_doe")
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("02 9037 5678")
    page.get_by_role("button", name="Call me back").click()
    page.wait_for_url(f"{base}/callnow/john_doe/requests/*")


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_every_admin_page_fits_and_passes_axe(live_server, browser, width):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    # axe-core is injected as a script, which the admin's CSP rightly forbids; only the test
    # bypasses it.
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    page = context.new_page()
    _ask_for_a_callback(page, live_server)
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Email").fill(DEMO_ADMIN[0])
    page.get_by_label("Password").fill(DEMO_ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/admin/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Today")
    paths = ["/admin/", *(f"/admin/{identity}/list" for identity in ADMIN_LISTS)]
    paths += [
        "/admin/call-request/details/1",
        "/admin/profile/details/1",
        "/admin/tenant/create",
        "/admin/tenant/edit/1",
        "/admin/do-not-call/create",
        "/admin/sessions",
    ]
    for path in paths:
        page.goto(f"{live_server}{path}")
        assert page.get_by_role("heading", level=1).count() == 1, path
        fits = page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert fits, f"{path} scrolls sideways at {width} px"
        results = Axe().run(page)
        assert results.violations_count == 0, (path, results.generate_report())
    # The request's page: its history, from the page's own heading down.
    page.goto(f"{live_server}/admin/call-request/details/1")
    assert page.get_by_role("heading", name="History").count() == 1
    assert page.get_by_role("cell", name="+61290375678").count() >= 1
    context.close()
