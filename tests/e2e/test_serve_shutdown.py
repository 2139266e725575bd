"""Stopping `callnow serve` while visitors watch their status pages.

A status stream stays open until its request ends or for ten minutes, and the web server waits
for open responses before it shuts down. The streams must not hold a restart for that long:
they are closed after a short grace, and the visitors' browsers reconnect by themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.test_serve_processes import healthy
from tests.support.ports import free_port
from tests.web.helpers import form_token

CALLNOW = Path(sys.executable).with_name("callnow")
# Far less than a stream's ten minutes, far more than the grace and the shutdown itself.
STOPPED_WITHIN_S = 60


def test_stopping_serve_does_not_wait_for_open_status_streams(tmp_path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CALLNOW_DATA_DIR": str(tmp_path),
        "CALLNOW_DATABASE_URL": f"sqlite:///{tmp_path / 'callnow.sqlite3'}",
        "CALLNOW_DEMO_DATA": "true",
        "CALLNOW_ENGINE__ENABLED": "false",  # the request stays queued: its stream stays open
        "CALLNOW_WEB__PORT": str(port),
        "CALLNOW_WEB__PUBLIC_BASE_URL": base_url,
    }
    env.pop("CALLNOW_CONFIG", None)
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen([str(CALLNOW), "serve"], env=env, stdout=out, stderr=out)
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for _ in range(600):
                if healthy(base_url):
                    break
                assert process.poll() is None, log.read_text()[-3000:]
                time.sleep(0.1)
            page = client.get("/callnow/john_doe")
            answer = client.post(
                "/callnow/john_doe",
                data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
            )
            assert answer.status_code == 303, answer.text
            status_url = answer.headers["location"]
            with client.stream("GET", status_url + "/events") as stream:
                lines = stream.iter_lines()
                assert any(line.startswith("data:") and "queued" in line for line in lines)

                process.send_signal(signal.SIGTERM)
                # uvicorn ends by raising the signal again, once it has shut down.
                assert process.wait(timeout=STOPPED_WITHIN_S) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Application shutdown complete" in log.read_text()
