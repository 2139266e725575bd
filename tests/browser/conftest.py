"""Browser tests: a test whose Chromium went away under it (the page, context or browser closed,
which no check of ours causes, or killed by the watchdog when it stopped answering: see
`watchdog.py`) runs once more; a failed check or a Playwright timeout never does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.watchdog import LIMIT_S

HERE = Path(__file__).parent
# pytest-timeout's limit covers both runs of a test together: two watchdog periods and room to
# start and stop, so a stuck Chromium fails (or reruns) its own test, never the whole run.
TIMEOUT_S = 2 * LIMIT_S + 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["TargetClosedError"]))
            item.add_marker(pytest.mark.timeout(TIMEOUT_S))
