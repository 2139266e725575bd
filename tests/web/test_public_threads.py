"""The public pages' work runs on threads of its own, `web.public_threads` of them.

Served by uvicorn on a real socket: each public page's first statement (the read of its
revision, before any write) is held for a while, so the visits pile up wherever they run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import event

from tests.support.http_server import served

HELD_S = 0.4


def test_visits_run_on_the_public_threads_only_and_health_answers_beside_them(
    world: Any,
) -> None:
    app = world.client.app
    engine = app.state.engine
    visits_at_once = world.settings.public_threads + 3
    guard = threading.Lock()
    running = 0
    most = 0

    def hold_public_work(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal running, most
        if "profiles.revision" not in statement:
            return
        with guard:
            running += 1
            most = max(most, running)
        time.sleep(HELD_S)
        with guard:
            running -= 1

    event.listen(engine, "before_cursor_execute", hold_public_work)
    try:
        with served(app) as base, ThreadPoolExecutor(visits_at_once) as visitors:
            visits = [
                visitors.submit(httpx.get, f"{base}/callnow/alice", timeout=30)
                for _ in range(visits_at_once)
            ]
            time.sleep(HELD_S / 2)  # the public threads are held now
            started = time.monotonic()
            health = httpx.get(f"{base}/api/v1/health", timeout=30)
            health_took = time.monotonic() - started
            statuses = [visit.result().status_code for visit in visits]
    finally:
        event.remove(engine, "before_cursor_execute", hold_public_work)

    assert statuses == [200] * visits_at_once
    assert most == world.settings.public_threads
    # Not queued behind the visits: they would keep it waiting HELD_S at least.
    assert health.status_code == 200
    assert health_took < HELD_S, health_took
