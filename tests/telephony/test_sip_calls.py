"""Outbound legs against real SIPp phones over UDP on 127.0.0.1.

Each test dials one SIPp UAS, checks the events our engine would see, and then checks what
the peer saw on the wire (its message log) and that its scenario ran to the end (exit 0).
"""

from __future__ import annotations

import pytest

from callnow.telephony.sip import (
    Answered,
    CallerId,
    Digit,
    Ended,
    EndedBy,
    Failed,
    FailureCause,
    LegState,
    RemoteSdpChanged,
    Ringing,
    SipStack,
    SipStackError,
)
from tests.peers.sipp import OFFER_SDP

pytestmark = pytest.mark.peers

VISITOR = CallerId("Mary Jones", "+61290375678")
EVENT_TIMEOUT = 5.0
RING_TIMEOUT = 2.0


async def test_answered_leg_then_local_hangup_sends_bye(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("answer.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    ringing = await leg.next_event(EVENT_TIMEOUT)
    assert isinstance(ringing, Ringing) and ringing.code == 180
    answered = await leg.next_event(EVENT_TIMEOUT)
    assert isinstance(answered, Answered)
    assert "m=audio" in (answered.sdp or "")
    assert leg.state is LegState.ANSWERED

    await leg.hangup()
    ended = await leg.next_event(EVENT_TIMEOUT)
    assert isinstance(ended, Ended) and ended.by is EndedBy.LOCAL

    assert peer.wait() == 0, peer.diagnostics()
    assert [m.method for m in peer.received() if m.method] == ["INVITE", "ACK", "BYE"]
    invite = peer.received("INVITE")[0]
    assert invite.header(
        "From",
    ).startswith('"Mary Jones" <sip:+61290375678@')
    assert invite.header("Content-Type") == "application/sdp"
    assert "m=audio 35000" in invite.body

    record = leg.record
    assert record.final_code == 200
    assert record.dialed_at <= record.ringing_at <= record.answered_at <= record.ended_at
    assert record.ended_by is EndedBy.LOCAL


async def test_busy_phone_fails_the_leg_with_486(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("busy.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    events = [event async for event in leg]

    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.cause) == (486, FailureCause.BUSY)
    assert leg.record.final_code == 486 and leg.state is LegState.FAILED
    assert peer.wait() == 0, peer.diagnostics()  # the peer got its ACK


async def test_ring_timeout_sends_cancel_and_fails_as_no_answer(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("ring_forever.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    events = [event async for event in leg]

    assert isinstance(events[0], Ringing)
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert failed.cause is FailureCause.NO_ANSWER and failed.code == 408
    assert peer.wait() == 0, peer.diagnostics()
    assert len(peer.received("CANCEL")) == 1
    assert leg.record.answered_at is None and leg.record.talk_seconds == 0.0


async def test_trunk_out_of_service_fails_with_503(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("trunk_503.xml")
    leg = await sip_stack.dial(
        peer.uri("+61290375678"),
        caller=CallerId("", "+61299990000"),
        sdp=OFFER_SDP,
        ring_timeout=RING_TIMEOUT,
    )

    await leg.wait_done(EVENT_TIMEOUT)

    assert leg.record.final_code == 503
    assert leg.record.failure_cause is FailureCause.UNAVAILABLE
    assert peer.wait() == 0, peer.diagnostics()


async def test_remote_bye_ends_the_leg(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("answer_then_bye.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    events = [event async for event in leg]

    assert any(isinstance(e, Answered) for e in events)
    ended = events[-1]
    assert isinstance(ended, Ended) and ended.by is EndedBy.REMOTE
    assert leg.record.ended_by is EndedBy.REMOTE
    assert peer.wait() == 0, peer.diagnostics()  # our 200 OK to its BYE arrived
    assert not peer.received("BYE")  # and we did not send a BYE of our own

    await leg.hangup()  # hanging up an ended leg is a harmless no-op


@pytest.mark.parametrize(
    ("scenario", "digit"),
    [("answer_info_dtmf_relay.xml", "1"), ("answer_info_dtmf.xml", "2")],
    ids=["application/dtmf-relay", "application/dtmf"],
)
async def test_info_keypress_becomes_a_digit_event(
    sip_stack: SipStack, sipp_peer, scenario: str, digit: str
) -> None:
    peer = sipp_peer(scenario, {"digit": digit})
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    event = await leg.next_event(EVENT_TIMEOUT)
    while not isinstance(event, Digit):
        assert not isinstance(event, Failed | Ended), event
        event = await leg.next_event(EVENT_TIMEOUT)

    assert event.digit == digit
    await leg.hangup()
    assert peer.wait() == 0, peer.diagnostics()  # INFO got its 200, BYE arrived
    assert [m.status for m in peer.received() if m.status] == [200]  # the 200 to its INFO


async def test_events_also_reach_the_on_event_callback(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("busy.xml")
    seen = []
    leg = await sip_stack.dial(
        peer.uri("1001"),
        caller=VISITOR,
        sdp=OFFER_SDP,
        ring_timeout=RING_TIMEOUT,
        on_event=lambda leg, event: seen.append((leg, event)),
    )

    await leg.wait_done(EVENT_TIMEOUT)

    assert seen and all(who is leg for who, _ in seen)
    assert isinstance(seen[-1][1], Failed)


async def test_reinvite_offers_a_new_sdp_and_returns_the_answer(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer_reinvite.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )
    while not isinstance(await leg.next_event(EVENT_TIMEOUT), Answered):
        pass
    moved = OFFER_SDP.replace("m=audio 35000", "m=audio 35002").replace("1 1 IN", "1 2 IN")

    answer = await leg.reinvite(moved)

    assert answer is not None and "m=audio 40002" in answer
    assert leg.remote_sdp == answer and leg.local_sdp == moved
    await leg.hangup()
    assert peer.wait() == 0, peer.diagnostics()
    first, second = peer.received("INVITE")
    assert "m=audio 35002" in second.body
    assert second.header("Call-ID") == first.header("Call-ID")
    assert second.cseq[0] > first.cseq[0]


async def test_stopping_the_stack_hangs_up_live_legs(sip_stack: SipStack, sipp_peer) -> None:
    answered_peer = sipp_peer("answer.xml")
    ringing_peer = sipp_peer("ring_forever.xml")
    answered = await sip_stack.dial(
        answered_peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )
    while not isinstance(await answered.next_event(EVENT_TIMEOUT), Answered):
        pass
    ringing = await sip_stack.dial(
        ringing_peer.uri("1002"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )
    assert isinstance(await ringing.next_event(EVENT_TIMEOUT), Ringing)

    await sip_stack.stop()

    assert (await answered.wait_done(EVENT_TIMEOUT)).ended_by is EndedBy.LOCAL
    assert (await ringing.wait_done(EVENT_TIMEOUT)).failure_cause is FailureCause.CANCELLED
    assert answered_peer.wait() == 0, answered_peer.diagnostics()  # it got our BYE
    ringing_peer.wait_for_request("CANCEL")


async def test_an_unresolvable_next_hop_is_an_error_not_a_stall(sip_stack: SipStack) -> None:
    with pytest.raises(SipStackError, match="cannot resolve"):
        await sip_stack.dial(
            "sip:1001@pbx.invalid:5080", caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
        )


async def test_a_re_invite_from_the_peer_is_answered_and_reported(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer_then_reinvite.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=RING_TIMEOUT
    )

    event = await leg.next_event(EVENT_TIMEOUT)
    while not isinstance(event, RemoteSdpChanged):
        assert not isinstance(event, Failed | Ended), event
        event = await leg.next_event(EVENT_TIMEOUT)

    assert "m=audio 40004" in (event.sdp or "")
    assert leg.remote_sdp == event.sdp
    await leg.hangup()
    assert peer.wait() == 0, peer.diagnostics()
    # It got our 200 to its re-INVITE, answering with our unchanged SDP.
    answers = [m for m in peer.received() if m.status == 200 and m.cseq[1] == "INVITE"]
    assert len(answers) == 1 and "m=audio 35000" in answers[0].body
