"""Garbage on the engine's SIP port and on its DTMF log port: neither crashes nor stalls the
live telephony, and a normal callback completes right after."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import SHORT_CALLS, facts, live_rig, methods_received, wait_for_exit
from tests.telephony.test_sip_robustness import torture_messages

pytestmark = pytest.mark.peers

DTMF_GARBAGE = [
    os.urandom(300),
    b"{",
    b"[]",
    b'{"callid": 7, "source_tag": "owner", "event": 1}',
    b'{"callid": "nosuch", "source_tag": "owner", "event": 1, "duration": 200}',
    b'{"type": "DTMF", "callid": "x", "source_tag": "owner", "event": true}',
    b"x" * 5000,
]


async def test_garbage_then_a_normal_callback_completes(
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    async with live_rig(
        owner, trunk, rtpengine_settings, tmp_path / "prompts", tmp_path, limits=SHORT_CALLS
    ) as rig:
        sip_address = rig.telephony.sip_address
        dtmf_address = (rtpengine_settings.ng_host, rtpengine_settings.dtmf_log_port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.1", 0))  # every Via names this socket: answers come here
            for datagram in torture_messages(attacker.getsockname()[1]):
                attacker.sendto(datagram, sip_address)
            for datagram in DTMF_GARBAGE:
                attacker.sendto(datagram, dtmf_address)

        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(trunk) == ["INVITE", "ACK", "BYE"]
    for role in LegRole:
        assert rig.record(role).disposition is Disposition.ANSWERED
    # Dropped as bad input (warnings), never an error path in the engine, sippy or our code.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("malformed DTMF" in r.getMessage() for r in caplog.records) == len(DTMF_GARBAGE) - 1
