"""The browser watchdog ends a call that a stuck Chromium would leave waiting for ever, and
kills nothing but that test's Chromium."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from playwright._impl._errors import TargetClosedError  # what the conftest reruns on
from playwright.sync_api import sync_playwright

from tests.browser.test_public_form import CHROMIUM, CHROMIUM_ARGS
from tests.browser.watchdog import chromium_below, chromium_watchdog


@pytest.mark.browser
def test_a_call_with_no_timeout_fails_once_the_watchdog_kills_chromium():
    bystander = subprocess.Popen(["sleep", "60"])  # another child of this test: left alone
    try:
        with chromium_watchdog(limit_s=3) as fired, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            started = time.monotonic()
            # A promise that never settles: `evaluate` has no timeout of its own.
            with pytest.raises(TargetClosedError):
                page.evaluate("new Promise(() => {})")
            assert time.monotonic() - started < 30
            assert fired.is_set()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.browser
def test_a_test_that_ends_in_time_is_left_alone():
    with chromium_watchdog(limit_s=30) as fired, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        assert chromium_below(os.getpid())  # it finds this test's Chromium
        assert browser.new_page().evaluate("1 + 1") == 2
        browser.close()
    assert not fired.is_set()
