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
