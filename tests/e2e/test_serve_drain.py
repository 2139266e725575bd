"""`callnow serve` on PostgreSQL drains its engine child on SIGTERM before it exits.

The real command with its engine child, SIPp phones and rtpengine. While a callback is bridged
the service gets SIGTERM: health says `draining`, the child's metrics show it, the call goes on
past a whole lease until the visitor hangs up, and only then does the service exit. The
request ends `completed` with one charge, nothing `interrupted`.
"""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest
from sqlalchemy import select

from callnow.bootstrap import seed_default_deck
from callnow.store.billing_models import ChargeRow
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallLeg, CallRequest
from tests.e2e.conftest import engine_ports_env
from tests.e2e.test_serve_processes import CALLNOW, healthy, serve_env
from tests.support.ports import free_port
from tests.support.world import empty_database, seed_alice
from tests.web.helpers import form_token

pytestmark = [pytest.mark.peers, pytest.mark.postgres]
LEASE_S = 4
TALK_S = 6  # answer_talk_then_bye.xml


@pytest.mark.timeout(150)
def test_serve_drains_its_engine_child_until_the_bridged_call_ends(
    postgresql_url, sipp_peer, tmp_path
):
    db = make_engine(postgresql_url)
    sessions = make_session_factory(db)
    with transaction(sessions) as session:
        seed_alice(session)
        seed_default_deck(session)
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer_talk_then_bye.xml")
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    try:
        with engine_ports_env() as ports, log.open("ab") as out:
            env = {
                **serve_env(postgresql_url, tmp_path, port, owner.port, ports),
                "CALLNOW_TRUNK__URI_TEMPLATE": f"sip:{{e164}}@127.0.0.1:{trunk.port}",
                "CALLNOW_SIP__MAX_CALL_DURATION_S": "60",
                "CALLNOW_ENGINE__LEASE_S": str(LEASE_S),
                "CALLNOW_ENGINE__DRAIN_S": "60",
                "CALLNOW_METRICS__ENABLED": "true",
                "CALLNOW_METRICS__PORT": str(free_port()),
                "CALLNOW_METRICS__ENGINE_PORT": str(metrics_port),
            }
            process = subprocess.Popen([str(CALLNOW), "serve"], env=env, stdout=out, stderr=out)
            try:
                _drain(process, base, f"http://127.0.0.1:{metrics_port}/metrics", sessions, log)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        with sessions() as session:
            [request] = session.scalars(select(CallRequest)).all()
            legs = {leg.role: leg for leg in session.scalars(select(CallLeg))}
            charges = list(session.scalars(select(ChargeRow.call_leg_id)))
        assert request.state == "completed"
        assert legs["requester"].billable_seconds >= TALK_S - 1
        assert charges == [legs["requester"].id]
    finally:
        db.dispose()
        empty_database(postgresql_url)


def _drain(process: subprocess.Popen[bytes], base: str, metrics_url: str, sessions, log) -> None:
    def state() -> str:
        with sessions() as session:
            return session.scalars(select(CallRequest.state)).one()

    deadline = time.monotonic() + 60
    while not healthy(base):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    with httpx.Client(base_url=base) as client:
        page = client.get("/callnow/alice")
        answer = client.post(
            "/callnow/alice",
            data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
        )
    assert answer.status_code == 303, answer.text
    deadline = time.monotonic() + 30
    while state() != "connected":
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    told = time.monotonic()
    process.send_signal(signal.SIGTERM)
    time.sleep(1)
    health = httpx.get(f"{base}/api/v1/health")
    assert health.status_code == 503 and "draining" in health.text
    assert "callnow_draining 1.0" in httpx.get(metrics_url).text
    time.sleep(LEASE_S)
    assert process.poll() is None and state() == "connected"  # past a lease, still carried
    assert process.wait(timeout=TALK_S + 40) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert time.monotonic() - told >= TALK_S - 2  # it waited for the call, not for a timer
