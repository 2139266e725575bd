"""A visitor in a real Chromium fills the public form and lands on the status page."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from callnow.bootstrap import prepare
from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from tests.browser.watchdog import chromium_watchdog
from tests.support.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(tmp_path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings, _ = prepare(
        Settings(data_dir=tmp_path, web=WebSettings(port=port, public_base_url=base))
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the setup script installs Debian's chromium")
    with chromium_watchdog(), sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.mark.browser
def test_a_visitor_submits_the_form_and_sees_the_status_page(live_server, browser, tmp_path):
    page = browser.new_page()
    page.goto(f"{live_server}/callnow/john_doe")
    assert page.get_by_role("heading", level=1).inner_text() == "Ask John Doe to call you back"
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("02 9037 5678")
    page.get_by_role("button", name="Call me back").click()
    page.wait_for_url(f"{live_server}/callnow/john_doe/requests/*")
    status = page.locator("#status")
    assert status.get_attribute("aria-live") == "polite"
    assert status.get_attribute("data-state") == "queued"
    assert "(02) 9037 5678" in page.inner_text("main")
    page.screenshot(path=str(tmp_path / "status.png"))


@pytest.mark.browser
def test_a_visitor_sees_a_refusal_beside_the_field(live_server, browser):
    page = browser.new_page()
    page.goto(f"{live_server}/callnow?id=john_doe")
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("0290375678;ext=1")
    page.get_by_role("button", name="Call me back").click()
    error = page.locator("#number-error")
    assert "may only contain digits" in error.inner_text()
    assert page.get_by_label("Your phone number").get_attribute("aria-invalid") == "true"
