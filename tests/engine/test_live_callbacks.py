"""Whole callbacks over real SIP and media: SIPp plays the owner's phone and the PSTN trunk,
a private rtpengine anchors the media, the engine runs in-process with `LiveTelephony`.

Each test checks what each peer saw on the wire (SIPp's message log), the request's outcome
and the call records written. Where media matters, `RtpPeer` sockets stand behind the SIPp
phones (their SDP points at them): they hear the prompt, press keys as RFC 4733 events and
exchange audio once the legs are bridged.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.flow import AcceptanceMode
from callnow.domain.prompt_text import confirm_prompt
from callnow.domain.request_state import RequestState
from callnow.telephony.prompts import wav_duration
from tests.engine.live_helpers import (
    OWNER_EXTERNAL,
    OWNER_INTERNAL,
    SHORT_CALLS,
    TEST_LIMITS,
    TRUNK_PASSWORD,
    TRUNK_USER,
    VISITOR_NAME,
    VISITOR_NUMBER,
    digest_response,
    facts,
    live_rig,
    media_address,
    methods_received,
    uri_user,
    wait_for_exit,
    wait_for_request,
)
from tests.peers.rtp import PACKET_INTERVAL_S, RtpPeer
from tests.support.waiting import until

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
    """The visitor is called through the trunk from the extension's external number."""
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


async def test_owner_accepts_by_rfc4733_hears_prompt_and_talks_until_visitor_hangs_up(
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
    assert methods_received(trunk) == ["INVITE", "ACK"]  # and the visitor sent its own
    assert_owner_invite(owner_invite, owner.port)
    assert_trunk_invite(trunk_invite, trunk.port)
    for role in LegRole:
        record = rig.record(role)
        assert record.disposition is Disposition.ANSWERED
        assert record.billable_seconds > 0
    assert rig.record(LegRole.OWNER).destination == OWNER_INTERNAL
    assert rig.record(LegRole.VISITOR).destination == VISITOR_NUMBER
    assert rig.recorder.states[-1] == (RequestState.COMPLETED, "requester_hung_up")


async def test_owner_accepts_by_sip_info_and_hangs_up_during_the_call(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as owner_phone, RtpPeer() as visitor_phone:
        owner = sipp_peer(
            "media_answer_info_then_bye.xml", {"rtp_port": str(owner_phone.port), "digit": "1"}
        )
        trunk = sipp_peer("media_answer.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            await rig.wait_for_state(RequestState.CONNECTED)
            await exchange_audio(
                owner_phone,
                media_address(owner_invite.body),
                visitor_phone,
                media_address(trunk_invite.body),
            )
            outcome = await rig.outcome(handle)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "owner_hung_up")
    assert (RequestState.CALLING_VISITOR, "owner_pressed_1") in rig.recorder.states
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK"]  # the owner sent INFO and BYE
    assert methods_received(trunk) == ["INVITE", "ACK", "BYE"]  # the visitor got our BYE
    assert_owner_invite(owner_invite, owner.port)
    assert_trunk_invite(trunk_invite, trunk.port)
    for role in LegRole:
        assert rig.record(role).disposition is Disposition.ANSWERED
        assert rig.record(role).billable_seconds > 0


async def test_owner_accepts_with_sipps_own_rfc4733_recording(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """The key comes from SIPp's dtmf_2833_1.pcap (a real phone's RFC 4733 packets), played
    from the owner's SIPp to the media address we offered; nothing is sent as SIP INFO."""
    pcap = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")
    assert pcap.is_file(), "Debian's sip-tester ships dtmf_2833_1.pcap; the scenario needs it"
    owner = sipp_peer("answer_pcap_dtmf_1.xml")
    trunk = sipp_peer("answer.xml")
    async with live_rig(
        owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=SHORT_CALLS
    ) as rig:
        handle = await rig.start(facts())
        outcome = await rig.outcome(handle)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert (RequestState.CALLING_VISITOR, "owner_pressed_1") in rig.recorder.states
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    assert [m.method for m in owner.sent() if m.method] == []  # no INFO: the key was RTP
    assert methods_received(trunk) == ["INVITE", "ACK", "BYE"]
    assert_trunk_invite(trunk.received("INVITE")[0], trunk.port)
    assert rig.record(LegRole.VISITOR).disposition is Disposition.ANSWERED


# -- the owner says no, or cannot be reached ------------------------------------------------


async def test_owner_declines_with_2_and_the_trunk_is_never_called(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf.xml", {"digit": "2"})
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_DECLINED, "owner_pressed_2")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    assert trunk.received() == []  # no INVITE (nor anything else) reached the trunk
    assert [r.role for r in rig.recorder.records] == [LegRole.OWNER]
    assert rig.record(LegRole.OWNER).disposition is Disposition.ANSWERED
    assert_owner_invite(owner.received("INVITE")[0], owner.port)


async def test_owner_busy(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("busy.xml")
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "owner_busy")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK"]
    assert trunk.received() == []
    record = rig.record(LegRole.OWNER)
    assert (record.disposition, record.sip_code, record.billable_seconds) == (
        Disposition.BUSY,
        486,
        0,
    )


async def test_owner_never_answers(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("ring_forever.xml")
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))
        await wait_for_request(owner, "ACK")  # of the 487 to our CANCEL, before the stack stops

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "owner_no_answer")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "CANCEL", "ACK"]  # the flow's ring timer
    assert trunk.received() == []
    record = rig.record(LegRole.OWNER)
    assert record.disposition is Disposition.NO_ANSWER
    assert record.ringing_at is not None and record.billable_seconds == 0


async def test_a_web_cancel_while_the_owner_rings_cancels_the_invite(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("ring_forever.xml")
    trunk = sipp_peer("answer.xml")
    limits = replace(TEST_LIMITS, owner_ring_s=10)  # only the cancel may end it
    async with live_rig(
        owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=limits
    ) as rig:
        handle = await rig.start(facts())
        await wait_for_request(owner, "INVITE")
        handle.cancel("visitor_cancelled")
        outcome = await rig.outcome(handle)
        await wait_for_request(owner, "ACK")  # of the 487, before the stack stops

    assert (outcome.state, outcome.reason) == (RequestState.CANCELLED, "visitor_cancelled")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "CANCEL", "ACK"]
    assert trunk.received() == []
    assert rig.record(LegRole.OWNER).disposition is Disposition.CANCELLED


async def test_owner_hangs_up_during_the_prompt(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_then_bye.xml")
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (
        RequestState.OWNER_DECLINED,
        "owner_hung_up_during_prompt",
    )
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK"]  # it sent the BYE; we sent none
    assert trunk.received() == []
    assert rig.record(LegRole.OWNER).disposition is Disposition.ANSWERED
    assert rig.telephony.open_channels == 0


async def test_owner_hangs_up_while_the_visitor_rings_cancels_the_visitor(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_then_bye.xml", {"digit": "1"})
    trunk = sipp_peer("ring_forever.xml")
    limits = replace(TEST_LIMITS, visitor_ring_s=10)  # only the owner's BYE may end it
    async with live_rig(
        owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=limits
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))
        # The CANCEL went out as the flow finished; keep the stack up until its 487 is ACKed
        # (SipStack.stop() right after a CANCEL would leave the 487 unacknowledged).
        await wait_for_request(trunk, "ACK")

    assert (outcome.state, outcome.reason) == (
        RequestState.COMPLETED,
        "owner_hung_up_before_connect",
    )
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(trunk) == ["INVITE", "CANCEL", "ACK"]
    visitor = rig.record(LegRole.VISITOR)
    assert (visitor.disposition, visitor.billable_seconds) == (Disposition.CANCELLED, 0)
    assert rig.record(LegRole.OWNER).disposition is Disposition.ANSWERED


# -- the visitor cannot be reached ----------------------------------------------------------


@pytest.mark.parametrize(
    ("trunk_scenario", "reason", "disposition", "sip_code", "trunk_saw"),
    [
        ("busy.xml", "requester_busy", Disposition.BUSY, 486, ["INVITE", "ACK"]),
        (
            "ring_forever.xml",
            "requester_no_answer",
            Disposition.NO_ANSWER,
            None,
            ["INVITE", "CANCEL", "ACK"],
        ),
        ("trunk_503.xml", "requester_failed", Disposition.FAILED, 503, ["INVITE", "ACK"]),
    ],
    ids=["busy", "no_answer", "trunk_503"],
)
async def test_visitor_unreachable_owner_is_told_and_released(
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
    trunk_scenario: str,
    reason: str,
    disposition: Disposition,
    sip_code: int | None,
    trunk_saw: list[str],
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer(trunk_scenario)
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.VISITOR_UNREACHABLE, reason)
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(trunk) == trunk_saw
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]  # after the notice
    assert_trunk_invite(trunk.received("INVITE")[0], trunk.port)
    visitor = rig.record(LegRole.VISITOR)
    assert (visitor.disposition, visitor.sip_code) == (disposition, sip_code)
    assert visitor.billable_seconds == 0
    assert rig.record(LegRole.OWNER).disposition is Disposition.ANSWERED


# -- trunk authentication ------------------------------------------------------------------


async def test_trunk_asks_407_and_accepts_our_digest(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("trunk_auth.xml")
    async with live_rig(
        owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=SHORT_CALLS
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    first, second = trunk.received("INVITE")
    assert first.header("Proxy-Authorization") is None
    authorization = second.header("Proxy-Authorization")
    assert authorization is not None and f'username="{TRUNK_USER}"' in authorization
    sent, expected = digest_response(authorization, "INVITE", TRUNK_PASSWORD)
    assert sent == expected
    for invite in (first, second):
        assert_trunk_invite(invite, trunk.port)
    assert methods_received(trunk) == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    assert rig.record(LegRole.VISITOR).disposition is Disposition.ANSWERED
    assert rig.record(LegRole.VISITOR).billable_seconds >= 2


async def test_trunk_rejects_our_credentials_without_a_retry_loop(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("trunk_auth_reject.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (
        RequestState.VISITOR_UNREACHABLE,
        "requester_failed",
    )
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()  # a 3rd INVITE would fail it
    assert len(trunk.received("INVITE")) == 2
    assert trunk.received("INVITE")[1].header("Proxy-Authorization") is not None
    visitor = rig.record(LegRole.VISITOR)
    assert (visitor.disposition, visitor.sip_code) == (Disposition.FAILED, 407)


# -- SIP details and limits ------------------------------------------------------------------


async def test_owner_contact_with_uppercase_transport_still_gets_our_bye(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """Auto-accepted (whisper, then the trunk at once); the visitor hangs up, and the BYE
    to the owner is an in-dialog request to `Contact: <...;transport=UDP>`."""
    owner = sipp_peer("answer_transport_upper.xml")
    trunk = sipp_peer("answer_then_bye.xml")
    async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(facts(AcceptanceMode.AUTO)))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "requester_hung_up")
    assert (RequestState.CALLING_VISITOR, "auto_accepted") in rig.recorder.states
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    assert_trunk_invite(trunk.received("INVITE")[0], trunk.port)
    for role in LegRole:
        assert rig.record(role).disposition is Disposition.ANSWERED


async def test_maximum_call_duration_ends_a_bridged_call_cleanly(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    limits = replace(TEST_LIMITS, max_call_duration_s=3)
    async with live_rig(
        owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=limits
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    assert methods_received(trunk) == ["INVITE", "ACK", "BYE"]
    visitor = rig.record(LegRole.VISITOR)
    assert visitor.answered_at is not None
    talked = (visitor.ended_at - visitor.answered_at).total_seconds()
    # The timer starts as the answer is handled; asyncio may fire it a hair early (its clock
    # resolution) and records use the wall clock, so 2.99 s floors to 2 billable seconds.
    assert 2.9 <= talked < 4.5, visitor
    assert visitor.billable_seconds in (2, 3, 4), visitor
    assert rig.record(LegRole.OWNER).billable_seconds >= 3


# -- several callbacks at once ------------------------------------------------------------------


async def test_two_callbacks_at_once_keep_their_keys_apart(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """One owner phone (SIPp, two calls, one RTP socket) gets two callbacks at once and
    presses 1 on one and 2 on the other: each RFC 4733 key reaches only its own callback,
    routed by rtpengine call-id and the owner's tag."""
    async with RtpPeer() as owner_phone:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)}, "-m", "2")
        trunk = sipp_peer("answer_then_bye.xml")
        async with live_rig(owner, trunk, rtpengine_settings, prompt_cache, tmp_path) as rig:
            alice = await rig.start(replace(facts(ref="req-alice"), caller_name="Alice"))
            bob = await rig.start(replace(facts(ref="req-bob"), caller_name="Bob"))
            await until(lambda: len(owner.received("ACK")) >= 2, what="both owner legs up")
            invites = {
                invite.header("From").split('"')[1]: media_address(invite.body)
                for invite in owner.received("INVITE")
            }
            assert set(invites) == {"Alice", "Bob"}
            # Keys only count once the flow asks; the prompt arriving from both proves it.
            await until(
                lambda: {p.source for p in owner_phone.received} >= set(invites.values()),
                what="a prompt from each of the two callbacks",
            )
            await asyncio.gather(
                owner_phone.send_digit(invites["Alice"], "1"),
                owner_phone.send_digit(invites["Bob"], "2"),
            )
            alice_outcome = await rig.outcome(alice)
            bob_outcome = await rig.outcome(bob)

    assert (bob_outcome.state, bob_outcome.reason) == (
        RequestState.OWNER_DECLINED,
        "owner_pressed_2",
    )
    assert (alice_outcome.state, alice_outcome.reason) == (
        RequestState.COMPLETED,
        "requester_hung_up",
    )
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    assert len(trunk.received("INVITE")) == 1  # only Alice's request reached the trunk
    assert sorted(methods_received(owner)) == sorted(["INVITE", "ACK", "BYE"] * 2)
