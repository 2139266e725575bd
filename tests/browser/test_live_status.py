"""A visitor in a real Chromium watches the status page follow the request without a reload."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from callnow.bootstrap import prepare
from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from callnow.domain.request_state import RequestState
from callnow.store import profiles
from callnow.store import requests as request_store
from callnow.store.db import make_engine, make_session_factory
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.support.ports import free_port

S = RequestState


@dataclass
class Live:
    base: str
    sessions: sessionmaker[Session]


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    """The web app alone (no engine): only this test moves the request along."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings, _ = prepare(
        Settings(data_dir=tmp_path, web=WebSettings(port=port, public_base_url=base))
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    engine = make_engine(settings.effective_database_url)
    yield Live(base, make_session_factory(engine))
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def queued_request(live: Live, decision: str = "confirm") -> str:
    """A request as the public form stores it (the form itself is test_public_form's subject;
    going through the store keeps this test about the live updates alone)."""
    with live.sessions() as session, session.begin():
        request = request_store.record_new(
            session,
            profile=profiles.by_callnow_id(session, "john_doe"),
            caller_name="Mary",
            number_typed="02 9037 5678",
            number_e164="+61290375678",
            source_address="127.0.0.1",
            user_agent="browser test",
            channel="web",
            decision=decision,
            reason="default",
            final_state=S.QUEUED,
        )
        return request.token


def move(live: Live, token: str, state: RequestState) -> None:
    with live.sessions() as session, session.begin():
        request_store.move(request_store.by_token(session, token), state, "browser test")


@pytest.mark.browser
def test_the_status_page_follows_the_call_to_the_end_without_a_reload(live, browser, tmp_path):  # noqa: F811
    page = browser.new_page()
    token = queued_request(live)
    page.goto(f"{live.base}/callnow/john_doe/requests/{token}")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "queued")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("button", name="Cancel my request")).to_be_visible()

    move(live, token, S.CALLING_OWNER)
    expect(status).to_have_attribute("data-state", "calling_owner")
    expect(status).to_have_text("We are calling John Doe now.")
    expect(page.get_by_role("button", name="Cancel my request")).to_be_visible()

    move(live, token, S.CALLING_VISITOR)
    expect(status).to_have_text("John Doe accepted — we are calling you now from (02) 9037 1234.")
    expect(page.get_by_role("button", name="Cancel my request")).to_be_hidden()

    move(live, token, S.CONNECTED)
    expect(status).to_have_attribute("data-state", "connected")
    expect(status).to_have_text("You are connected.")

    move(live, token, S.COMPLETED)
    expect(status).to_have_attribute("data-state", "completed")
    expect(status).to_have_text("The call has finished. Thank you.")
    expect(page.locator("#live-hint")).to_be_hidden()
    assert navigations == []  # every change arrived over the event stream
    page.screenshot(path=str(tmp_path / "finished.png"))


@pytest.mark.browser
def test_the_visitor_cancels_from_the_status_page(live, browser):  # noqa: F811
    page = browser.new_page()
    page.goto(f"{live.base}/callnow/john_doe/requests/{queued_request(live)}")
    page.get_by_role("button", name="Cancel my request").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "cancelled")
    expect(page.locator("#status")).to_have_text("The request was cancelled.")


@pytest.mark.browser
def test_the_owner_sees_a_held_request_arrive_and_accepts_it(live, browser):  # noqa: F811
    from callnow.store.provisioning import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD

    page = browser.new_page()
    page.goto(f"{live.base}/portal/login")
    page.get_by_label("Email").fill(DEMO_OWNER_EMAIL)
    page.get_by_label("Password").fill(DEMO_OWNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.base}/portal")
    page.goto(f"{live.base}/portal/pending")
    expect(page.locator("#pending-count")).to_have_text("0 waiting")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    token = queued_request(live, decision="confirm_web")
    expect(page.locator("#pending-count")).to_have_text("1 waiting")
    item = page.locator(f'li[data-token="{token}"]')
    expect(item).to_contain_text("Mary, (02) 9037 5678")
    assert navigations == []  # it arrived over the event stream

    item.get_by_role("button", name="Accept").click()
    page.wait_for_url(f"{live.base}/portal/pending")
    expect(page.locator("#pending-count")).to_have_text("0 waiting")
    with live.sessions() as session:
        request = request_store.by_token(session, token)
        assert (request.state, request.decision) == ("queued", "web")
