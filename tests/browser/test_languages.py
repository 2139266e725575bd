"""The visitor's pages in German and Arabic in a real Chromium (its locale and Accept-Language
set): the words, `lang` and `dir`, no sideways scrolling at 390 px and 1280 px, axe-core clean,
the live status in the page's language, and a language switch that keeps what was typed."""

from __future__ import annotations

import pytest

from callnow.domain.request_state import RequestState
from tests.browser.test_live_status import Live, live, move, queued_request  # noqa: F401
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.browser.test_visitor_journey import WIDTHS, fits_and_passes_axe

EXPECTED = {
    "de": {
        "dir": "ltr",
        "heading": "Bitten Sie John Doe um einen Rückruf",
        "title": "Rückruf von John Doe – CallNow",
        "button": "Rückruf anfordern",
        "status_heading": "Ihre Rückrufanfrage",
        "queued": "Ihre Anfrage wartet; wir rufen gleich John Doe an.",
        "calling": "Wir rufen jetzt John Doe an.",
    },
    "ar": {
        "dir": "rtl",
        "heading": "اطلب من John Doe معاودة الاتصال بك",
        "title": "معاودة الاتصال من John Doe – CallNow",
        "button": "اتصلوا بي",
        "status_heading": "طلب معاودة الاتصال الخاص بك",
        "queued": "طلبك في الانتظار؛ سنتصل بـ John Doe بعد لحظات.",
        "calling": "نتصل الآن بـ John Doe.",
    },
}


def language_context(browser, language: str, width: int):  # noqa: F811
    # axe-core is injected as a script, which the pages' CSP rightly forbids; only the test
    # bypasses it.
    return browser.new_context(
        viewport={"width": width, "height": 800},
        bypass_csp=True,
        locale=language,
        extra_http_headers={"Accept-Language": f"{language},en;q=0.1"},
    )


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["de", "ar"])
def test_public_and_status_pages_in_the_browser_language(
    live,  # noqa: F811
    browser,  # noqa: F811
    language,
    width,
):
    words = EXPECTED[language]
    context = language_context(browser, language, width)
    page = context.new_page()
    page.goto(f"{live.base}/callnow/john_doe")
    html = page.locator("html")
    assert html.get_attribute("lang") == language
    assert html.get_attribute("dir") == words["dir"]
    assert page.title() == words["title"]
    assert page.get_by_role("heading", level=1).inner_text() == words["heading"]
    assert page.get_by_role("button", name=words["button"]).is_visible()
    fits_and_passes_axe(page)

    token = queued_request(live)
    page.goto(f"{live.base}/callnow/john_doe/requests/{token}")
    assert html.get_attribute("dir") == words["dir"]
    assert page.get_by_role("heading", level=1).inner_text() == words["status_heading"]
    status = page.locator("#status")
    assert status.inner_text() == words["queued"]
    fits_and_passes_axe(page)
    # The live update arrives in the page's language too.
    move(live, token, RequestState.CALLING_OWNER)
    page.wait_for_function(
        "text => document.getElementById('status').textContent === text", arg=words["calling"]
    )
    fits_and_passes_axe(page)
    context.close()


@pytest.mark.browser
def test_the_switch_keeps_what_was_typed(live, browser):  # noqa: F811
    context = language_context(browser, "de", 390)
    page = context.new_page()
    page.goto(f"{live.base}/callnow/john_doe")
    page.get_by_label("Ihr Name").fill("Mary Müller")
    page.get_by_label("Ihre Telefonnummer").fill("02 9037 5678")
    switch = page.get_by_role("navigation", name="Sprache")
    switch.get_by_role("button", name="العربية").click()
    page.wait_for_function("document.documentElement.lang === 'ar'")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_label("اسمك").input_value() == "Mary Müller"
    assert page.get_by_label("رقم هاتفك").input_value() == "02 9037 5678"
    fits_and_passes_axe(page)
    # Pressing Enter in a field still sends the request (the switch's buttons come after).
    page.get_by_label("رقم هاتفك").press("Enter")
    page.wait_for_url(f"{live.base}/callnow/john_doe/requests/*")
    assert page.locator("html").get_attribute("lang") == "ar"
    assert page.get_by_role("heading", level=1).inner_text() == EXPECTED["ar"]["status_heading"]
    # Without a form on the page the switch is links; the choice is kept for the next page.
    page.get_by_role("navigation", name="اللغة").get_by_role("link", name="Deutsch").click()
    page.wait_for_function("document.documentElement.lang === 'de'")
    assert page.get_by_role("heading", level=1).inner_text() == EXPECTED["de"]["status_heading"]
    page.goto(f"{live.base}/callnow/john_doe")
    assert page.locator("html").get_attribute("lang") == "de"
    context.close()
