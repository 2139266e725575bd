"""A whole callback placed from the button's overlay on another origin's site: the form in the
frame, SIPp phones for the owner and the visitor, and the framed status page following the real
call to "connected" and "finished"."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from tests.browser.test_embed_button import _site, _write_site
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.browser.test_whole_callback import service  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.peers]


@pytest.mark.parametrize("width", [390, 1280])
def test_a_request_from_the_overlay_becomes_a_whole_callback(
    service,  # noqa: F811
    browser,  # noqa: F811
    tmp_path,
    width,
):
    site_root = tmp_path / "site"
    site_root.mkdir()
    for site in _site(site_root):
        with sqlite3.connect(tmp_path / "callnow.sqlite3") as db:
            db.execute(
                "UPDATE profiles SET embed_origins = ? WHERE callnow_id = 'john_doe'", (site,)
            )
        _write_site(
            site_root,
            f'<a href="{service}/callnow/john_doe" data-callnow="john_doe">Call me back</a>'
            f'<script src="{service}/callnow/john_doe/embed.js" async></script>',
        )
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        page.goto(site + "/")
        page.wait_for_function("document.querySelector('[data-callnow-ready]') !== null")
        page.get_by_role("button", name="Call me back").click()
        form = page.frame_locator("dialog iframe")
        form.get_by_label("Your name").fill("Mary")
        form.get_by_label("Your phone number").fill("0412 345 678")
        form.get_by_role("button", name="Call me back").click()
        status = form.locator("#status")
        expect(status).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(status).to_have_attribute("data-state", "completed", timeout=30_000)
        expect(status).to_contain_text("finished")
        context.close()
