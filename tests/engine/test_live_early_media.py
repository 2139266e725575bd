"""What the owner and the carrier hear while the visitor's phone rings (real SIPp, real
rtpengine): the owner's audio is held back from the carrier until the visitor answers, even
when the carrier sends early media (which the owner does hear); after the answer both sides
talk."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import (
    TEST_LIMITS,
    facts,
    live_rig,
    media_address,
    wait_for_exit,
    wait_for_request,
)
from tests.engine.test_live_callbacks import exchange_audio
from tests.peers.rtp import RtpPeer

pytestmark = pytest.mark.peers

# The carrier rings 2.5 s before answering.
LIMITS = replace(TEST_LIMITS, visitor_ring_s=6)
RINGING_PACKETS = 50  # one second of talk from both sides while the visitor's phone rings


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


async def test_the_owner_is_not_heard_by_the_carrier_before_the_visitor_answers(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as owner_phone, RtpPeer() as carrier:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer("early_media_answer.xml", {"rtp_port": str(carrier.port)})
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=LIMITS
        ) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)
            await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            carrier_sends_to = media_address(trunk_invite.body)

            # Early media: the carrier plays its tone, the owner speaks; 2.5 s before the 200.
            carrier.clear()
            owner_phone.clear()
            await asyncio.sleep(0.2)  # the block is asked for before the INVITE leaves
            await asyncio.gather(
                owner_phone.send_audio(owner_sends_to, RINGING_PACKETS, fill=0x11),
                carrier.send_audio(carrier_sends_to, RINGING_PACKETS, fill=0x33),
            )
            heard_by_carrier_early = [p.payload for p in carrier.audio_packets()]
            heard_by_owner_early = [p.payload for p in owner_phone.audio_packets()]
            assert not trunk.received("ACK"), "the visitor answered too soon for this test"

            await rig.wait_for_state(RequestState.CONNECTED)
            await exchange_audio(owner_phone, owner_sends_to, carrier, carrier_sends_to)
            await rig.engine.shutdown("test_over")
            await rig.outcome(handle)

    # Without the block the carrier heard all of it (checked when this was written).
    assert bytes([0x11]) * 160 not in heard_by_carrier_early
    # The carrier's early media (its ringback) does reach the owner.
    assert heard_by_owner_early.count(bytes([0x33]) * 160) >= RINGING_PACKETS * 0.9
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()


async def test_without_early_media_the_owner_hears_our_ringback_until_the_answer(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as owner_phone, RtpPeer() as visitor_phone:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer("ring_then_media_answer.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=LIMITS
        ) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)
            await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            visitor_sends_to = media_address(trunk_invite.body)
            owner_phone.clear()
            await asyncio.sleep(1.5)  # the visitor's phone rings 2.5 s
            ringback = [p.payload for p in owner_phone.audio_packets()]
            assert not trunk.received("ACK"), "the visitor answered too soon for this test"

            # Once the visitor answers the tone stops: the owner hears only the visitor.
            await rig.wait_for_state(RequestState.CONNECTED)
            await asyncio.sleep(0.2)
            await exchange_audio(owner_phone, owner_sends_to, visitor_phone, visitor_sends_to)
            await rig.engine.shutdown("test_over")
            await rig.outcome(handle)

    # 400+450 Hz for Australia: 20 ms frames, some of them tone (not mu-law silence).
    assert len(ringback) >= 1.5 / 0.02 * 0.8
    assert sum(1 for frame in ringback if len(set(frame)) > 4) >= 20
