"""The pages of owner notices in a real Chromium: e-mail choices, password reset, the mailed
answer page and the mail itself fit 390 px and 1280 px with no sideways scroll and pass
axe-core; a new request raises a browser notification on any open portal page."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from callnow.domain.notices import Kind
from callnow.notify import links, render
from callnow.store import mail as mail_store
from callnow.store import password_reset
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import User, utcnow
from callnow.store.notify_models import MailOutbox
from tests.browser.test_public_form import browser, live_server  # noqa: F401  # fixtures
from tests.support.smtp import html_of
from tests.support.world import queued_request

DEMO_OWNER = ("john@example.com", "callnow-demo")


def log_in(page, base: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(DEMO_OWNER[0])
    page.get_by_label("Password").fill(DEMO_OWNER[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal")


def fits_and_passes_axe(page) -> None:
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), f"{page.url} scrolls sideways"
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def sessions_of(tmp_path: Path):
    return make_session_factory(make_engine(f"sqlite:///{tmp_path / 'callnow.sqlite3'}"))


def held_request(tmp_path: Path, number: str) -> str:
    with transaction(sessions_of(tmp_path)) as session:
        return queued_request(session, "john_doe", number, decision="confirm_web").token


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_notice_pages_fit_and_pass_axe(live_server, browser, tmp_path, width):  # noqa: F811
    # axe-core is injected as a script, which the page's CSP rightly forbids; only the test
    # bypasses it.
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    page = context.new_page()

    page.goto(f"{live_server}/portal/reset")
    assert page.get_by_role("heading", level=1).inner_text() == "Reset your password"
    fits_and_passes_axe(page)
    page.get_by_label("Email").fill("john@example.com")
    page.get_by_role("button", name="Send me a link").click()
    assert page.get_by_role("status").inner_text().startswith("If an account exists")
    fits_and_passes_axe(page)

    sessions = sessions_of(tmp_path)
    with transaction(sessions) as session:
        password_reset.request_reset(session, "john@example.com", utcnow(), timedelta(minutes=30))
        token = session.query(MailOutbox).order_by(MailOutbox.id.desc()).first().details["token"]
    page.goto(f"{live_server}/portal/reset/{token}")
    fits_and_passes_axe(page)

    key = (tmp_path / "secret_key").read_text().strip()
    signed = links.sign(
        key, held_request(tmp_path, "+61290375678"), "accept", utcnow() + timedelta(minutes=5)
    )
    page.goto(f"{live_server}/portal/mail-answer/{signed}")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Call back")
    fits_and_passes_axe(page)
    page.get_by_role("button", name="Accept and call back").click()
    assert page.get_by_role("status").inner_text().startswith("Accepted")
    fits_and_passes_axe(page)

    log_in(page, live_server)
    page.goto(f"{live_server}/portal/notifications")
    assert page.get_by_role("heading", level=1).inner_text() == "E-mail notices"
    fits_and_passes_axe(page)
    page.get_by_label("Pause all e-mail notices").check()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Saved."
    assert page.get_by_label("Pause all e-mail notices").is_checked()
    fits_and_passes_axe(page)
    context.close()


# Records each notification the page raises, then lets the browser's own one through.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notices = [];
  function Recording(title, options) {
    window.__notices.push({title: title, body: (options || {}).body || ""});
    return new Real(title, options);
  }
  Recording.prototype = Real.prototype;
  Object.defineProperty(Recording, "permission", {get: () => Real.permission});
  Recording.requestPermission = Real.requestPermission.bind(Real);
  window.Notification = Recording;
})();
"""


@pytest.mark.browser
def test_a_new_request_raises_a_browser_notification_on_any_portal_page(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    tmp_path,
):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["notifications"], origin=live_server)
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server}/portal/notifications")
    assert page.evaluate("Notification.permission") == "granted"
    page.get_by_label("Play a sound with each new request").uncheck()
    assert page.evaluate("localStorage.getItem('callnow.notice-sound')") == "off"
    page.wait_for_timeout(1500)  # the stream's first snapshot: what waits already is no news
    held_request(tmp_path, "+61290375679")
    deadline = time.monotonic() + 15
    while not page.evaluate("window.__notices.length") and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # (wait_for_function evaluates a string: the CSP forbids it)
    [notice] = page.evaluate("window.__notices")
    assert notice["title"] == "Callback request waiting"
    assert "(02) 9037 5679" in notice["body"]
    context.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_an_awaiting_mail_fits_passes_axe_and_its_button_answers(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    tmp_path,
    width,
):
    """The HTML part of the mail an owner reads on a phone: its Accept button opens the page
    that calls the visitor back."""
    held_request(tmp_path, "+61290375679")
    with transaction(sessions_of(tmp_path)) as session:
        owner = session.scalars(select(User.id).where(User.email == DEMO_OWNER[0])).one()
        [notice] = mail_store.due_of(session, owner, utcnow() + timedelta(hours=1))
    assert notice.kind is Kind.AWAITING
    ctx = render.MailContext(
        secret_key=(tmp_path / "secret_key").read_text().strip(),
        base_url=live_server,
        from_address="callnow@pbx.example",
        answer_link=timedelta(hours=1),
        now=utcnow(),
    )
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_content(html_of(render.single(ctx, notice)))
    fits_and_passes_axe(page)
    page.get_by_role("link", name="Accept (call them back)").click()
    page.wait_for_url(f"{live_server}/portal/mail-answer/**")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Call back Mary")
    page.get_by_role("button", name="Accept and call back").click()
    assert page.get_by_role("status").inner_text().startswith("Accepted")
    context.close()
