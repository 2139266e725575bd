"""Browser tests: a test whose Chromium went away under it (the page, context or browser closed,
which no check of ours causes) runs once more; a failed check or a timeout never does."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["TargetClosedError"]))
