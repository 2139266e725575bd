"""A real softphone as the owner's extension: baresip registered to Kamailio (a registrar).

CallNow rings the owner by its address of record through Kamailio, which finds baresip's
registered contact; baresip answers by itself and presses 1 as an RFC 2833 telephone-event
(its own encoder, not a recording); the visitor's phone (SIPp + an RTP socket) answers and
audio flows both ways: baresip's tone reaches the visitor, the visitor's audio reaches baresip
(its own RTP receive counters).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import LegRole
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import OWNER_INTERNAL, facts, live_rig, media_address
from tests.peers.rtp import RtpPeer

pytestmark = pytest.mark.peers

AUDIO_PACKETS = 50


def received_from(audio_debug: str, ssrc: int) -> int:
    """RTP packets baresip received from the source `ssrc` (its RTCP member list in the
    `audio_debug` output: `member 0x<ssrc>: ... rcvd=<n>`)."""
    found = re.search(rf"member 0x{ssrc:08x}:.*?rcvd=(\d+)", audio_debug, re.S)
    assert found, audio_debug
    return int(found.group(1))


async def test_baresip_registered_to_kamailio_accepts_by_rfc2833_and_audio_flows_both_ways(
    sipp_peer,
    kamailio_proxy,
    baresip_phone,
    rtpengine_settings: RtpengineSettings,
    tmp_path: Path,
) -> None:
    async with RtpPeer() as visitor_phone:
        trunk = sipp_peer("media_answer.xml", {"rtp_port": str(visitor_phone.port)})
        proxy = kamailio_proxy(target=trunk.address, registrar=True)
        phone = baresip_phone(OWNER_INTERNAL, proxy.address)
        await asyncio.to_thread(phone.wait_registered)
        async with live_rig(
            trunk,
            trunk,
            rtpengine_settings,
            tmp_path / "prompts",
            tmp_path,
            owner_uri_template=f"sip:{{internal}}@127.0.0.1:{proxy.port}",
        ) as rig:
            handle = await rig.start(facts())
            await asyncio.to_thread(phone.wait_event, "CALL_ESTABLISHED")
            await asyncio.sleep(0.5)
            await asyncio.to_thread(phone.command, "sndcode", "1")
            await rig.wait_for_state(RequestState.CONNECTED, timeout=15)
            trunk_invite = trunk.received("INVITE")[0]
            visitor_phone.clear()
            await visitor_phone.send_audio(media_address(trunk_invite.body), AUDIO_PACKETS)
            await asyncio.sleep(0.3)
            heard_by_visitor = len(visitor_phone.received)
            debug = await asyncio.to_thread(phone.command, "audio_debug")
            await asyncio.to_thread(phone.command, "hangup")
            outcome = await rig.outcome(handle)

    assert outcome.state is RequestState.COMPLETED, outcome
    assert heard_by_visitor >= AUDIO_PACKETS // 2, heard_by_visitor
    # rtpengine relays the visitor's stream as it is (same codec): baresip counts its SSRC.
    assert received_from(debug, visitor_phone._stream.ssrc) >= AUDIO_PACKETS // 2, debug
    # The key came as RFC 2833 in the media: no INFO went through the registrar.
    assert "INFO" not in {line.method for line in proxy.trace() if line.kind == "req"}
    assert {"REGISTER", "INVITE", "ACK", "BYE"} <= {
        line.method for line in proxy.trace() if line.kind == "req"
    }
    assert rig.record(LegRole.OWNER).billable_seconds > 0
