"""The embed snippet on a site of another origin, in a real Chromium at 390 px and 1280 px: the
button opens the owner's form in an overlay and a request placed there is stored; Escape closes
it and focus returns; a site the owner did not list cannot frame the page (the browser refuses)
and gets a new window instead; the embed variant passes axe-core."""

from __future__ import annotations

import functools
import http.server
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.test_public_form import browser, live_server  # noqa: F401 (fixtures)
from tests.browser.test_share_kit import log_in

OTHER_HOST = "127.0.0.2"  # another origin than CallNow's 127.0.0.1


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _site(root: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer((OTHER_HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{OTHER_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def two_sites(tmp_path) -> Iterator[tuple[Path, str, Path, str]]:
    """An owner's site (listed) and someone else's (not listed), both on 127.0.0.2."""
    listed, unlisted = tmp_path / "listed", tmp_path / "unlisted"
    listed.mkdir()
    unlisted.mkdir()
    for listed_url in _site(listed):
        for unlisted_url in _site(unlisted):
            yield listed, listed_url, unlisted, unlisted_url


def _write_site(root: Path, body: str) -> None:
    (root / "index.html").write_text(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>A shop</title></head><body><main><h1>A shop</h1>{body}</main></body></html>"
    )


def _snippet(browser_page, base: str) -> str:
    return browser_page.locator("#embed-snippet-john_doe").input_value()


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_button_opens_the_form_on_a_listed_site_only(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    two_sites,
    tmp_path,
    width,
):
    listed, listed_url, unlisted, unlisted_url = two_sites
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()

    # The owner lists their site in the sharing kit and copies the snippet.
    log_in(page, live_server)
    page.get_by_label("Sites that may show your form").fill(listed_url)
    page.get_by_role("button", name="Save the button").click()
    page.wait_for_url(f"{live_server}/portal*")
    snippet = _snippet(page, live_server)
    assert f'src="{live_server}/callnow/john_doe/embed.js"' in snippet
    # The live preview in the kit is the real button.
    preview = page.locator("#embed-preview-john_doe")
    preview.wait_for(state="attached")
    page.wait_for_function("document.querySelector('[data-callnow-ready]') !== null")
    page.get_by_label("Button label").fill("Ring me back")
    assert preview.inner_text() == "Ring me back"
    page.get_by_label("Button label").fill("Call me back")

    # On the listed site: the button, by keyboard, opens the overlay.
    _write_site(listed, snippet)
    _write_site(
        unlisted,
        snippet + f'<iframe title="framed" src="{live_server}/callnow/john_doe?embed=1"></iframe>',
    )
    page.goto(listed_url + "/")
    button = page.get_by_role("button", name="Call me back")
    page.wait_for_function("document.querySelector('[data-callnow-ready]') !== null")
    assert _no_sideways_scroll(page)
    button.focus()
    page.keyboard.press("Space")
    dialog = page.get_by_role("dialog", name="Call me back")
    dialog.wait_for()
    assert Axe().run(page, context="dialog").violations_count == 0  # the overlay's own parts
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    form = page.frame_locator("dialog iframe")
    form.get_by_label("Your name").fill("Mary Embed")
    # Escape inside the form closes the overlay and focus returns to the button. The key goes
    # through the page's keyboard to the focused field: an element's own press waits on its
    # frame, which the closing overlay removes, and could then hang.
    form.get_by_label("Your name").focus()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert page.evaluate("document.activeElement.getAttribute('data-callnow')") == "john_doe"

    # Again (Enter works too), and this time a request is placed from inside the overlay.
    page.keyboard.press("Enter")
    form = page.frame_locator("dialog iframe")
    form.get_by_label("Your name").fill("Mary Embed")
    form.get_by_label("Your phone number").fill("02 9037 5678")
    form.get_by_role("button", name="Call me back").click()
    form.locator("#status").wait_for()
    assert "(02) 9037 5678" in form.locator("main").inner_text()
    with sqlite3.connect(tmp_path / "callnow.sqlite3") as db:
        rows = db.execute(
            "SELECT caller_name, number_e164 FROM call_requests WHERE caller_name = 'Mary Embed'"
        ).fetchall()
    assert rows == [("Mary Embed", "+61290375678")]
    page.get_by_role("button", name="Close").click()
    page.get_by_role("dialog").wait_for(state="detached")

    # On a site the owner did not list, the browser refuses to frame the page...
    page.goto(unlisted_url + "/")
    frame_element = page.locator("iframe[title=framed]").element_handle()
    frame = frame_element.content_frame()
    frame.wait_for_load_state()
    assert frame.locator("form").count() == 0
    assert not frame.url.startswith(live_server)
    # ... and the button opens the page in a new window instead of an overlay.
    page.wait_for_function("document.querySelector('[data-callnow-ready]') !== null")
    with page.expect_popup() as popup:
        page.get_by_role("link", name="Call me back").click()
    popup.value.wait_for_load_state()
    assert popup.value.url == f"{live_server}/callnow/john_doe"
    assert page.get_by_role("dialog").count() == 0
    context.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_embed_variant_passes_axe_and_fits(live_server, browser, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live_server}/callnow/john_doe?embed=1")
    assert _no_sideways_scroll(page)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    page.get_by_label("Your phone number").fill("call me")
    page.get_by_role("button", name="Call me back").click()
    page.locator("#number-error").wait_for()
    assert page.url.endswith("?embed=1")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    context.close()
