"""The portal in German and in Arabic in a real Chromium: the browser's language before
sign-in, the owner's own choice after it; right-to-left for Arabic; nothing wider than a phone
or a desktop screen and no axe-core violations in either language."""

from __future__ import annotations

import pytest

from callnow.store.provisioning import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from tests.browser.test_portal_pages import OWNER_PAGES, check
from tests.browser.test_public_form import browser, live_server  # noqa: F401  # fixtures

WIDTHS = (390, 1280)
# What each language calls the login form's parts, the save button and its answer.
WORDS = {
    "de": {
        "email": "E-Mail",
        "password": "Passwort",
        "log_in": "Anmelden",
        "home": "Meine CallNow-Seiten",
        "save": "Speichern",
        "saved": "Gespeichert.",
        "language": "Ihre Sprache (dieses Portal, Ihre E-Mails und die Ansagen Ihres Telefons)",
    },
    "ar": {
        "email": "البريد الإلكتروني",
        "password": "كلمة المرور",
        "log_in": "تسجيل الدخول",
        "home": "صفحاتي في CallNow",
        "save": "حفظ",
        "saved": "تم الحفظ.",
        "language": "لغتك (هذه البوابة ورسائل بريدك وما يقوله هاتفك)",
    },
}


def choose_own_language(page, base: str, language: str, label: str, save: str, saved: str):
    page.goto(f"{base}/portal/profiles/john_doe/preferences")
    page.get_by_label(label).select_option(language)
    page.get_by_role("button", name=save, exact=True).click()
    assert page.get_by_role("status").inner_text() == saved


@pytest.mark.browser
@pytest.mark.parametrize("language", ["de", "ar"])
def test_the_portal_in_german_and_arabic_fits_and_passes_axe(live_server, browser, language):  # noqa: F811
    words = WORDS[language]
    direction = "rtl" if language == "ar" else "ltr"
    context = browser.new_context(locale=language, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    # Before sign-in the browser's Accept-Language chooses.
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in ("/portal/login", "/portal/reset"):
            problems += check(page, f"{live_server}{path}", width)
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator("html").get_attribute("dir") == direction
    page.goto(f"{live_server}/portal/login")
    page.get_by_label(words["email"]).fill(DEMO_OWNER_EMAIL)
    page.get_by_label(words["password"]).fill(DEMO_OWNER_PASSWORD)
    page.get_by_role("button", name=words["log_in"]).click()
    page.wait_for_url(f"{live_server}/portal")
    # The demo owner's own language is English: the portal follows it, not the browser.
    assert page.locator("html").get_attribute("lang") == "en"
    choose_own_language(
        page,
        live_server,
        language,
        "Your language (this portal, your e-mails and what your phone says)",
        "Save",
        words["saved"],  # the answer speaks the language just chosen
    )
    assert page.locator("html").get_attribute("dir") == direction
    page.goto(f"{live_server}/portal")
    assert page.title() == words["home"]
    a_request(page, live_server)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in OWNER_PAGES:
            problems += check(page, f"{live_server}{path}", width)
            if path != "/portal/nothing-here":  # the site's own 404 page, not a portal route
                assert page.locator("html").get_attribute("lang") == language, path
    # Back to English through the same form, in the language it speaks now.
    choose_own_language(page, live_server, "en", words["language"], words["save"], "Saved.")
    context.close()
    assert not problems, "\n".join(problems)


def a_request(page, base: str) -> None:
    """A request on the owner's page, so the tables have a row (the public page is the other
    helper's: its fields are found by their ids, whatever language it speaks)."""
    page.goto(f"{base}/callnow/john_doe")
    page.locator("#name").fill("Mary")
    page.locator("#number").fill("02 9037 5678")
    page.locator("form:has(#number) button[type=submit]").click()
    page.wait_for_url(f"{base}/callnow/john_doe/requests/*")
