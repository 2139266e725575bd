"""SIGTERM stops `callnow serve` within its bound, also while the public form is flooded.

The service runs as shipped (SQLite, the engine in a child process of serve) with every abuse
limit lifted, so each post does the whole intake. A callback rings the owner's phone (SIPp that
never answers) when SIGTERM arrives: health says `draining` while the engine drains, the ringing
phone is cancelled once the drain time is over, and the process exits by itself, not by its
watchdog, well within the bound, with 64 clients still posting throughout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from callnow.cli.serve import SHUTDOWN_GRACE_S, STOP_MARGIN_S
from callnow.store.db import make_engine
from callnow.store.models import CallRequest
from tests.e2e.conftest import engine_ports_env
from tests.e2e.test_serve_processes import healthy
from tests.support.limits import UNLIMITED
from tests.support.ports import free_port
from tests.web.helpers import form_token

pytestmark = pytest.mark.peers
CALLNOW = Path(sys.executable).with_name("callnow")
CLIENTS = 64
DRAIN_S = 3
# What `callnow serve` promises: drain, grace for open responses, the engine's stop.
BOUND_S = DRAIN_S + SHUTDOWN_GRACE_S + STOP_MARGIN_S
# What it should take in fact: the drain, the grace, and a few seconds to close down.
PROMPT_S = DRAIN_S + SHUTDOWN_GRACE_S + 15
LIMITS = ("PER_SOURCE", "PER_NETWORK", "PER_PROFILE", "PER_NUMBER", "PER_BLOCK", "PLATFORM")


@pytest.mark.timeout(180)
def test_sigterm_stops_serve_promptly_while_the_public_form_is_flooded(tmp_path, sipp_peer):
    owner = sipp_peer("ring_forever.xml")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with engine_ports_env() as ports:
        env = {
            **os.environ,
            **ports,
            "CALLNOW_DATA_DIR": str(tmp_path),
            "CALLNOW_DATABASE_URL": f"sqlite:///{tmp_path / 'callnow.sqlite3'}",
            "CALLNOW_DEMO_DATA": "true",
            "CALLNOW_WEB__PORT": str(port),
            "CALLNOW_WEB__PUBLIC_BASE_URL": base,
            "CALLNOW_SIP__OWNER_URI_TEMPLATE": f"sip:{{internal}}@127.0.0.1:{owner.port}",
            "CALLNOW_SIP__OWNER_RING_TIMEOUT_S": "60",
            "CALLNOW_ENGINE__DRAIN_S": str(DRAIN_S),
            "CALLNOW_ENGINE__POLL_INTERVAL_S": "0.2",
            "CALLNOW_ABUSE__CAPTCHA_AUTO_ON": UNLIMITED,
            "CALLNOW_ABUSE__SPIKE_PAUSE": UNLIMITED,
            **{f"CALLNOW_ABUSE__{name}": UNLIMITED for name in LIMITS},
        }
        env.pop("CALLNOW_CONFIG", None)
        with log.open("ab") as out:
            process = subprocess.Popen([str(CALLNOW), "serve"], env=env, stdout=out, stderr=out)
        try:
            _run(process, base, owner, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    engine = make_engine(env["CALLNOW_DATABASE_URL"])
    with engine.connect() as connection:
        states = dict(
            connection.execute(
                select(CallRequest.state, func.count()).group_by(CallRequest.state)
            ).all()
        )
    engine.dispose()
    assert "interrupted" not in states, states
    assert states.get("queued", 0) > 0  # the flood's posts wait for the next start


def _run(process: subprocess.Popen[bytes], base: str, owner, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not healthy(base):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    flooding = threading.Event()
    flooding.set()
    answered: list[int] = []

    def flood(client_number: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            try:
                token = form_token(client.get("/callnow/john_doe").text)
            except (httpx.HTTPError, AssertionError):
                return
            n = client_number
            while flooding.is_set():
                try:
                    answer = client.post(
                        "/callnow/john_doe",
                        data={"form_token": token, "name": "Flood", "number": f"02 9100 {n:04d}"},
                    )
                    answered.append(answer.status_code)
                except httpx.HTTPError:
                    time.sleep(0.05)  # refused or cut off once the server stops: go on trying
                n = (n + CLIENTS) % 10_000

    with ThreadPoolExecutor(CLIENTS) as pool:
        for number in range(CLIENTS):
            pool.submit(flood, number)
        try:
            owner.wait_for_request("INVITE", timeout=30)  # a callback is ringing the owner
            time.sleep(2)  # the flood is under way
            assert process.poll() is None, log.read_text()[-3000:]
            told = time.monotonic()
            process.send_signal(signal.SIGTERM)
            health = _health_while_running(process, base)
            code = process.wait(timeout=BOUND_S)
            took = time.monotonic() - told
        finally:
            flooding.clear()
    text = log.read_text()
    assert code in (0, -signal.SIGTERM), (code, text[-3000:])
    assert took < PROMPT_S, f"stopped after {took:.1f} s"
    assert "did not stop within" not in text
    assert "draining" in health, health
    assert answered and 303 in answered
    owner.wait_for_request("CANCEL", timeout=5)  # the ringing phone was told, not left ringing


def _health_while_running(process: subprocess.Popen[bytes], base: str) -> set[str]:
    """What health said between SIGTERM and the moment it stopped answering."""
    said: set[str] = set()
    deadline = time.monotonic() + DRAIN_S
    while process.poll() is None and time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/api/v1/health", timeout=2)
            said.add(answer.text)
        except httpx.HTTPError:
            break
        time.sleep(0.2)
    return {"draining" if "draining" in text else text for text in said}
