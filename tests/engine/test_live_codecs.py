"""Codecs on a real callback (SIPp phones, a real rtpengine): the trunk is offered the
configured list, an A-law-only carrier and a mu-law-only owner's phone talk both ways through
rtpengine's transcoding, and nothing of the owner phone's SDP origin reaches the carrier.
Where a trunk's list has G722, a wide-band owner's phone hears its prompt in G.722 and talks
G.722 untouched with a wide-band callee, or transcoded with an A-law one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.flow import Reason
from callnow.domain.request_state import RequestState
from callnow.telephony.sdp import codec_names
from tests.engine.live_helpers import (
    SHORT_CALLS,
    facts,
    live_rig,
    media_address,
    template_for,
    wait_for_exit,
    wait_for_request,
)
from tests.peers.rtp import RtpPeer

pytestmark = pytest.mark.peers

PCMU, PCMA = 0, 8
PACKETS = 25


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def ulaw_to_linear(byte: int) -> int:
    """ITU-T G.711 mu-law decoding."""
    value = ~byte & 0xFF
    magnitude = (((value & 0x0F) << 3) + 0x84) << ((value >> 4) & 0x07)
    return -(magnitude - 0x84) if value & 0x80 else magnitude - 0x84


def alaw_to_linear(byte: int) -> int:
    """ITU-T G.711 A-law decoding."""
    value = byte ^ 0x55
    exponent, mantissa = (value >> 4) & 0x07, value & 0x0F
    magnitude = (
        (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return magnitude if value & 0x80 else -magnitude


def close(level: int, expected: int) -> bool:
    """Within one G.711 step: the two laws quantise the same level a little differently."""
    return abs(level - expected) <= max(64, abs(expected) // 10)


def payload_types(sdp: str) -> list[str]:
    found = re.search(r"^m=audio \d+ RTP/AVP ([\d ]+)$", sdp, re.M)
    assert found, sdp
    return found.group(1).split()


def origin_fields(sdp: str) -> tuple[str, str, str]:
    found = re.search(r"^o=(\S+) (\d+) \d+ IN IP4 (\S+)", sdp, re.M)
    assert found, sdp
    return found.group(1), found.group(2), found.group(3)


async def test_alaw_carrier_and_mulaw_owner_talk_through_transcoding(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as owner_phone, RtpPeer() as visitor_phone:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)})  # PCMU only
        trunk = sipp_peer("media_answer_pcma.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)
            await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            visitor_sends_to = media_address(trunk_invite.body)
            await rig.wait_for_state(RequestState.CONNECTED)

            owner_phone.clear()
            visitor_phone.clear()
            await asyncio.gather(
                owner_phone.send_audio(owner_sends_to, PACKETS, payload_type=PCMU, fill=0x11),
                visitor_phone.send_audio(visitor_sends_to, PACKETS, payload_type=PCMA, fill=0x22),
            )
            await visitor_phone.wait_for_packets(PACKETS, timeout_s=3)
            await owner_phone.wait_for_packets(PACKETS, timeout_s=3)
            heard_by_visitor = visitor_phone.audio_packets()
            heard_by_owner = owner_phone.audio_packets()
            await rig.engine.shutdown("test_over")
            await rig.outcome(handle)

    # The carrier was offered the default list, A-law first, and RFC 4733 events.
    assert payload_types(trunk_invite.body)[:2] == ["8", "0"]
    assert "telephone-event/8000" in trunk_invite.body
    # Each phone hears its own law, carrying what the other said (G.711 levels kept).
    assert len(heard_by_visitor) >= PACKETS * 0.9
    assert {p.payload_type for p in heard_by_visitor} == {PCMA}
    assert len(heard_by_owner) >= PACKETS * 0.9
    assert {p.payload_type for p in heard_by_owner} == {PCMU}
    said_by_owner, said_by_visitor = ulaw_to_linear(0x11), alaw_to_linear(0x22)
    heard_levels = {alaw_to_linear(b) for p in heard_by_visitor[5:] for b in p.payload}
    assert all(close(level, said_by_owner) for level in heard_levels), heard_levels
    heard_levels = {ulaw_to_linear(b) for p in heard_by_owner[5:] for b in p.payload}
    assert all(close(level, said_by_visitor) for level in heard_levels), heard_levels
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()


async def test_the_trunk_invite_carries_our_origin_not_the_owner_phones(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        await rig.start(facts())
        trunk_invite = await wait_for_request(trunk, "INVITE")
        owner_answer = next(m for m in owner.sent() if m.status == 200 and m.cseq[1] == "INVITE")

    user, session, address = origin_fields(trunk_invite.body)
    owner_user, owner_session, _ = origin_fields(owner_answer.body)
    assert (user, session) != (owner_user, owner_session)
    assert user == "callnow" and session != owner_session
    assert address == media_address(trunk_invite.body)[0]  # rtpengine's, not the phone's


async def test_each_trunk_is_offered_its_own_codecs_also_on_failover(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """The first trunk (the default list) answers 503; the next one, configured A-law only, is
    offered exactly PCMA and telephone-event, answers A-law and the call completes."""
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    first = sipp_peer("trunk_503.xml")
    alaw_only = sipp_peer("media_answer_pcma.xml", {"rtp_port": "9"})
    backup = {"name": "alaw", "uri_template": template_for(alaw_only, "e164"), "codecs": ["PCMA"]}
    async with live_rig(
        owner,
        first,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        SHORT_CALLS,
        more_settings={"trunks": [backup]},
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, Reason.MAX_DURATION_REACHED)
    first_offer = first.received("INVITE")[0].body
    assert payload_types(first_offer)[:2] == ["8", "0"]
    offer = alaw_only.received("INVITE")[0].body
    assert codec_names(offer) == ["PCMA", "telephone-event"], offer
    assert await wait_for_exit(alaw_only) == 0, alaw_only.diagnostics()


G722 = 9
WIDEBAND_TRUNK = {"codecs": ["G722", "PCMA", "PCMU"]}


async def _wideband_call(
    callee_scenario: str,
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
) -> dict[str, object]:
    """A G.722-only owner's phone accepts by RFC 4733 and talks with a callee answering as
    `callee_scenario`, through a trunk offered G722, PCMA, PCMU. Returns what the wire saw."""
    async with RtpPeer() as owner_phone, RtpPeer() as visitor_phone:
        owner = sipp_peer("media_answer_g722.xml", {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer(callee_scenario, {"rtp_port": str(visitor_phone.port)})
        async with live_rig(
            owner,
            trunk,
            rtpengine_settings,
            prompt_cache,
            tmp_path,
            trunk_settings=WIDEBAND_TRUNK,
        ) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)
            await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            prompt = owner_phone.audio_packets()
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            visitor_sends_to = media_address(trunk_invite.body)
            await rig.wait_for_state(RequestState.CONNECTED)

            owner_phone.clear()
            visitor_phone.clear()
            await asyncio.gather(
                owner_phone.send_audio(owner_sends_to, PACKETS, payload_type=G722, fill=0x11),
                visitor_phone.send_audio(
                    visitor_sends_to,
                    PACKETS,
                    payload_type=PCMA if "pcma" in callee_scenario else G722,
                    fill=0x22,
                ),
            )
            await visitor_phone.wait_for_packets(PACKETS, timeout_s=3)
            await owner_phone.wait_for_packets(PACKETS, timeout_s=3)
            heard_by_visitor = visitor_phone.audio_packets()
            heard_by_owner = owner_phone.audio_packets()
            await rig.engine.shutdown("test_over")
            await rig.outcome(handle)
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    return {
        "owner_offer": owner_invite.body,
        "trunk_offer": trunk_invite.body,
        "prompt": prompt,
        "heard_by_visitor": heard_by_visitor,
        "heard_by_owner": heard_by_owner,
    }


def _check_owner_side(seen: dict[str, object]) -> None:
    # The owner's phone was offered G.722 first, and heard the prompt in G.722.
    assert codec_names(str(seen["owner_offer"]))[:3] == ["G722", "PCMU", "PCMA"]
    prompt = seen["prompt"]
    assert isinstance(prompt, list) and len(prompt) >= 50  # a second of prompt at least
    assert {p.payload_type for p in prompt} == {G722}
    assert {len(p.payload) for p in prompt} == {160}  # 20 ms of G.722 at 64 kbit/s
    assert len({p.payload for p in prompt}) > len(prompt) // 2  # speech, not one frame repeated


async def test_two_wideband_phones_talk_g722_end_to_end_untouched(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    seen = await _wideband_call(
        "media_answer_g722.xml", sipp_peer, rtpengine_settings, prompt_cache, tmp_path
    )
    _check_owner_side(seen)
    assert codec_names(str(seen["trunk_offer"])) == ["G722", "PCMA", "PCMU", "telephone-event"]
    heard_by_visitor, heard_by_owner = seen["heard_by_visitor"], seen["heard_by_owner"]
    assert isinstance(heard_by_visitor, list) and isinstance(heard_by_owner, list)
    assert len(heard_by_visitor) >= PACKETS * 0.9
    assert len(heard_by_owner) >= PACKETS * 0.9
    # Not transcoded: each side receives the other's G.722 frames byte for byte.
    assert {p.payload_type for p in heard_by_visitor + heard_by_owner} == {G722}
    assert {p.payload for p in heard_by_visitor} == {bytes([0x11]) * 160}
    assert {p.payload for p in heard_by_owner} == {bytes([0x22]) * 160}


async def test_a_wideband_owner_and_an_alaw_callee_are_transcoded(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    seen = await _wideband_call(
        "media_answer_pcma.xml", sipp_peer, rtpengine_settings, prompt_cache, tmp_path
    )
    _check_owner_side(seen)
    assert codec_names(str(seen["trunk_offer"]))[:3] == ["G722", "PCMA", "PCMU"]
    heard_by_visitor, heard_by_owner = seen["heard_by_visitor"], seen["heard_by_owner"]
    assert isinstance(heard_by_visitor, list) and isinstance(heard_by_owner, list)
    assert len(heard_by_visitor) >= PACKETS * 0.9
    assert len(heard_by_owner) >= PACKETS * 0.9
    # Each phone hears its own codec: rtpengine decodes one and encodes the other.
    assert {p.payload_type for p in heard_by_visitor} == {PCMA}
    assert {p.payload_type for p in heard_by_owner} == {G722}
    assert {len(p.payload) for p in heard_by_owner} == {160}
    # What the visitor said reached the owner re-encoded, not copied.
    assert bytes([0x22]) * 160 not in {p.payload for p in heard_by_owner}
    assert bytes([0x11]) * 160 not in {p.payload for p in heard_by_visitor}
