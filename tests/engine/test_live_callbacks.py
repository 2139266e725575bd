"""Whole callbacks over real SIP and media: SIPp plays the owner's phone and the PSTN trunk,
a private rtpengine anchors the media, the engine runs in-process with `LiveTelephony`.

Each test checks what each peer saw on the wire (SIPp's message log), the request's outcome
and the call records written. Where media matters, `RtpPeer` sockets stand behind the SIPp
phones (their SDP points at them): they hear the prompt, press keys as RFC 4733 events and
exchange audio once the legs are bridged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.prompt_text import confirm_prompt
from callnow.domain.request_state import RequestState
from callnow.telephony.prompts import wav_duration
from tests.engine.live_helpers import (
    OWNER_EXTERNAL,
    OWNER_INTERNAL,
    VISITOR_NAME,
    VISITOR_NUMBER,
    facts,
    live_rig,
    media_address,
    methods_received,
    uri_user,
    wait_for_exit,
    wait_for_request,
)
from tests.peers.rtp import PACKET_INTERVAL_S, RtpPeer

pytestmark = pytest.mark.peers

AUDIO_PACKETS = 25  # half a second each way after the bridge


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the module's tests: each prompt text is rendered by espeak-ng once."""
    return tmp_path_factory.mktemp("prompts")


def assert_owner_invite(invite, owner_port: int) -> None:
    """The owner's phone is rung on its internal number and shows who is asking."""
    assert invite.request_uri == f"sip:{OWNER_INTERNAL}@127.0.0.1:{owner_port}"
    assert invite.header("From").startswith(f'"{VISITOR_NAME}" <sip:{VISITOR_NUMBER}@')


def assert_trunk_invite(invite, trunk_port: int) -> None:
    """The requester is called through the trunk from the extension's external number."""
    assert invite.request_uri == f"sip:{VISITOR_NUMBER}@127.0.0.1:{trunk_port}"
    assert uri_user(invite.header("From")) == OWNER_EXTERNAL
    assert uri_user(invite.header("P-Asserted-Identity")) == OWNER_EXTERNAL


async def exchange_audio(
    owner_phone: RtpPeer,
    owner_sends_to: tuple[str, int],
    visitor_phone: RtpPeer,
    visitor_sends_to: tuple[str, int],
) -> None:
    """Both phones talk at once; each must hear exactly what the other said."""
    owner_phone.clear()
    visitor_phone.clear()
    await asyncio.gather(
        owner_phone.send_audio(owner_sends_to, AUDIO_PACKETS, fill=0x11),
        visitor_phone.send_audio(visitor_sends_to, AUDIO_PACKETS, fill=0x22),
    )
    await visitor_phone.wait_for_packets(AUDIO_PACKETS, timeout_s=3)
    await owner_phone.wait_for_packets(AUDIO_PACKETS, timeout_s=3)
    heard_by_visitor = [p.payload for p in visitor_phone.audio_packets()]
    heard_by_owner = [p.payload for p in owner_phone.audio_packets()]
    assert len(heard_by_visitor) >= AUDIO_PACKETS * 0.9
    assert set(heard_by_visitor) == {bytes([0x11]) * 160}
    assert len(heard_by_owner) >= AUDIO_PACKETS * 0.9
    assert set(heard_by_owner) == {bytes([0x22]) * 160}


# -- accepted, bridged, hung up -----------------------------------------------------------


async def test_owner_accepts_by_rfc4733_hears_prompt_and_talks_until_requester_hangs_up(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as owner_phone, RtpPeer() as visitor_phone:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer("media_answer_then_bye.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)

            # The prompt plays to the owner's media address for about its rendered length.
            heard = await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            prompt = rig.telephony.renderer.path_for(
                confirm_prompt(caller_number=VISITOR_NUMBER, region="AU", caller_name=VISITOR_NAME)
            )
            duration = wav_duration(prompt)
            span = heard[-1].received_at - heard[0].received_at + PACKET_INTERVAL_S
            assert abs(span - duration) < 0.5, (span, duration)
            assert len(heard) >= 0.9 * duration / PACKET_INTERVAL_S

            # "1" as RFC 4733 events from the owner's phone, during the digit wait.
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            visitor_sends_to = media_address(trunk_invite.body)
            await rig.wait_for_state(RequestState.CONNECTED)
            await exchange_audio(owner_phone, owner_sends_to, visitor_phone, visitor_sends_to)

            outcome = await rig.outcome(handle)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "requester_hung_up")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]  # the owner got our BYE
    assert methods_received(trunk) == ["INVITE", "ACK"]  # and the requester sent its own
    assert_owner_invite(owner_invite, owner.port)
    assert_trunk_invite(trunk_invite, trunk.port)
    for role in LegRole:
        record = rig.record(role)
        assert record.disposition is Disposition.ANSWERED
        assert record.billable_seconds > 0
    assert rig.record(LegRole.OWNER).destination == OWNER_INTERNAL
    assert rig.record(LegRole.REQUESTER).destination == VISITOR_NUMBER
    assert rig.recorder.states[-1] == (RequestState.COMPLETED, "requester_hung_up")
