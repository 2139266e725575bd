"""The portal's sharing kit in a real Chromium at 390 px and 1280 px: it fits without sideways
scrolling, passes axe-core, its copy buttons copy, and the QR code downloads."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.test_public_form import browser, live_server  # noqa: F401 (fixtures)


def log_in(page, base: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("john@example.com")
    page.get_by_label("Password").fill("callnow-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal")


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_sharing_kit_fits_copies_and_downloads(live_server, browser, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    log_in(page, live_server)
    # The kit itself: the page's other sections (the requests table) are the portal layout's.
    kit = page.locator(".share-kit").first
    assert page.evaluate(
        "el => el.getBoundingClientRect().right <= document.documentElement.clientWidth",
        kit.element_handle(),
    )
    results = Axe().run(page, context=".share-kit")
    assert results.violations_count == 0, results.generate_report()

    page.get_by_role("button", name=f"Copy the address {live_server}/callnow/john_doe").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{live_server}/callnow/john_doe"
    page.get_by_role("button", name="Copy the signature HTML").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("<table") and f'href="{live_server}/callnow/john_doe"' in copied
    assert page.get_by_role("status").filter(has_text="Copied").count() == 1

    with page.expect_download() as download:
        page.get_by_role("link", name="SVG").first.click()
    assert download.value.suggested_filename == "callnow-john_doe-card.svg"
    context.close()


@pytest.mark.browser
def test_without_scripts_the_addresses_stay_selectable_text(live_server, browser):  # noqa: F811
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server)
    assert page.locator("#url-path-john_doe").inner_text() == f"{live_server}/callnow/john_doe"
    assert page.locator("button.copy").first.is_hidden()
    context.close()
