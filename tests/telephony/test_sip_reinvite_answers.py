"""A peer's re-INVITE on a leg answered by the SIP stack itself (no media relay asked):
the answer keeps our SDP and mirrors the offered direction (RFC 3264 6.1), on the wire."""

from __future__ import annotations

import asyncio
import re

import pytest

from callnow.telephony.sip import CallerId, Ended, Failed, RemoteSdpChanged, SipStack
from tests.peers.sipp import OFFER_SDP, SipMessage, SippPeer

pytestmark = pytest.mark.peers

VISITOR = CallerId("Mary Jones", "+61290375678")
# The SDP addresses the SIPp phone announces (no media flows in these tests).
PHONE_KEYS = {"rtp_port": "40010", "rtp_host2": "127.0.0.2", "rtp_port2": "40012"}


def answers_to_invites(peer: SippPeer) -> list[SipMessage]:
    return [m for m in peer.received() if m.status == 200 and m.cseq[1] == "INVITE"]


def direction_of(sdp: str) -> str:
    found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", sdp, re.M)
    return found[-1] if found else "sendrecv"


async def test_hold_is_answered_recvonly_and_resume_sendrecv(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer(
        "trunk_hold_resume.xml",
        {"rtp_port": "40010", "rtp_host2": "127.0.0.2", "rtp_port2": "40012"},
    )
    leg = await sip_stack.dial(peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=2)

    offers = []
    while len(offers) < 2:
        event = await leg.next_event(5)
        assert not isinstance(event, Failed | Ended), event
        if isinstance(event, RemoteSdpChanged):
            offers.append(event.sdp or "")
    await leg.hangup()

    assert peer.wait() == 0, peer.diagnostics()  # SIPp checked recvonly, then sendrecv
    assert [direction_of(o) for o in offers] == ["sendonly", "sendrecv"]
    assert "m=audio 40012" in offers[1] and "c=IN IP4 127.0.0.2" in offers[1]
    assert leg.remote_sdp == offers[1]
    answers = answers_to_invites(peer)
    assert [direction_of(a.body) for a in answers] == ["recvonly", "sendrecv"]
    assert all("m=audio 35000" in a.body for a in answers)  # our media stays where it was


async def test_a_deferred_re_invite_nobody_answers_is_answered_locally_in_time(
    sip_stack: SipStack, sipp_peer
) -> None:
    """The leg's owner (the engine) must answer; if it never does, the phone is not left
    waiting: after `update_answer_s` the stack answers from our last SDP."""
    peer = sipp_peer("trunk_hold_resume.xml", PHONE_KEYS)
    leg = await sip_stack.dial(
        peer.uri("1001"),
        caller=VISITOR,
        sdp=OFFER_SDP,
        ring_timeout=2,
        defer_updates=True,
        update_answer_s=0.3,
    )

    seen = 0
    while seen < 2:
        event = await leg.next_event(5)
        assert not isinstance(event, Failed | Ended), event
        seen += isinstance(event, RemoteSdpChanged)
    async with asyncio.timeout(5):  # until the stack's own answer to the resume arrived
        while len(answers_to_invites(peer)) < 2:
            await asyncio.sleep(0.05)
    assert await leg.answer_update(OFFER_SDP) is False  # too late: nothing is pending
    await leg.hangup()

    assert peer.wait() == 0, peer.diagnostics()
    answers = answers_to_invites(peer)
    assert [direction_of(a.body) for a in answers] == ["recvonly", "sendrecv"]
