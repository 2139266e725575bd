"""The end-to-end rig: the whole service in-process with real SIPp peers and rtpengine."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from callnow.bootstrap import seed_default_deck
from callnow.config import EngineSettings, Settings, SipSettings, TrunkSettings, WebSettings
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallRequest
from tests.peers.rtpengine import reserved_rtp_block
from tests.support.ports import free_port
from tests.support.world import seed_alice
from tests.web.helpers import form_token


@contextlib.contextmanager
def engine_ports_env() -> Iterator[dict[str, str]]:
    """Environment for a `callnow` process with an engine: its own SIP port and private
    rtpengine (control, DTMF log and a block of RTP ports), free while the block is held."""
    with reserved_rtp_block() as (port_min, port_max):
        yield {
            "CALLNOW_SIP__LISTEN_PORT": str(free_port()),
            "CALLNOW_RTPENGINE__MODE": "spawn",
            "CALLNOW_RTPENGINE__NG_PORT": str(free_port()),
            "CALLNOW_RTPENGINE__DTMF_LOG_PORT": str(free_port()),
            "CALLNOW_RTPENGINE__PORT_MIN": str(port_min),
            "CALLNOW_RTPENGINE__PORT_MAX": str(port_max),
        }


def wait_until_finished(sessions, request_id: int, timeout_s: float = 40) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions() as session:
            state = session.get(CallRequest, request_id).state
        if state in (
            "completed",
            "failed",
            "owner_declined",
            "owner_unreachable",
            "requester_unreachable",
            "interrupted",
            "cancelled",
        ):
            return state
        time.sleep(0.1)
    return state


@pytest.fixture
def callback_service(db_url, sipp_peer, rtpengine_settings, tmp_path):
    def start(
        owner_scenario: str,
        owner_keys: dict[str, str],
        trunk_scenario: str = "answer.xml",
        max_call_s: int = 2,
        owner_args: tuple[str, ...] = (),
        **overrides: object,
    ):
        owner = sipp_peer(owner_scenario, owner_keys, *owner_args)
        trunk = sipp_peer(trunk_scenario)
        settings = Settings(
            data_dir=tmp_path,
            database_url=db_url,
            demo_data=False,
            web=WebSettings(secret_key="e2e-" + "k" * 40, public_base_url="http://testserver"),
            sip=SipSettings(
                listen_port=free_port(),
                owner_uri_template=f"sip:{{internal}}@127.0.0.1:{owner.port}",
                owner_ring_timeout_s=5,
                visitor_ring_timeout_s=5,
                max_call_duration_s=max_call_s,
            ),
            trunk=TrunkSettings(uri_template=f"sip:{{e164}}@127.0.0.1:{trunk.port}"),
            rtpengine=rtpengine_settings.model_copy(update={"mode": "spawn"}),
            engine=EngineSettings(lease_s=10, poll_interval_s=0.2),
        ).model_copy(update=overrides)
        engine = make_engine(db_url)
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            seed_alice(session)
            seed_default_deck(session)
        return settings, sessions, owner, trunk

    return start


def submit(client: TestClient, number: str = "02 9037 5678") -> str:
    page = client.get("/callnow/alice")
    response = client.post(
        "/callnow/alice",
        data={"form_token": form_token(page.text), "name": "Mary", "number": number},
    )
    assert response.status_code == 303, response.text[:300]
    return response.headers["location"]
