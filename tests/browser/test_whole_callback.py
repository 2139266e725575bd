"""The whole product in a real browser: a visitor submits the form, and the status page follows
the real call (SIPp phones, rtpengine, the engine in the same process) to "connected" and then
"finished", without a reload."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import expect

from callnow.bootstrap import prepare
from callnow.compose import create_app
from callnow.config import EngineSettings, Settings, SipSettings, TrunkSettings, WebSettings
from tests.browser.test_public_form import browser  # noqa: F401 (a fixture)
from tests.support.ports import free_port

pytestmark = [pytest.mark.browser, pytest.mark.peers]


@pytest.fixture
def service(tmp_path, sipp_peer, rtpengine_settings) -> Iterator[str]:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings, _ = prepare(
        Settings(
            data_dir=tmp_path,
            web=WebSettings(port=port, public_base_url=base),
            sip=SipSettings(
                listen_port=free_port(),
                owner_uri_template=f"sip:{{internal}}@127.0.0.1:{owner.port}",
                max_call_duration_s=4,
            ),
            trunk=TrunkSettings(uri_template=f"sip:{{e164}}@127.0.0.1:{trunk.port}"),
            rtpengine=rtpengine_settings.model_copy(update={"mode": "spawn"}),
            engine=EngineSettings(poll_interval_s=0.2),
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, with_engine=True), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the service did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=20)


def test_the_status_page_follows_a_real_call_to_connected_and_finished(service, browser):  # noqa: F811
    page = browser.new_page()
    page.goto(f"{service}/callnow/john_doe")
    page.get_by_label("Your name").fill("Mary")
    page.get_by_label("Your phone number").fill("0412 345 678")
    page.get_by_role("button", name="Call me back").click()
    page.wait_for_url(f"{service}/callnow/john_doe/requests/*")
    loads = []
    page.on("load", lambda _: loads.append(page.url))
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(status).to_contain_text("connected")
    expect(status).to_have_attribute("data-state", "completed", timeout=30_000)
    expect(status).to_contain_text("finished")
    assert loads == []  # every change arrived over the open event stream
