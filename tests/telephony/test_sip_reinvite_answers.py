"""A peer's re-INVITE on a leg answered by the SIP stack itself (no media relay asked):
the answer keeps our SDP and mirrors the offered direction (RFC 3264 6.1), on the wire."""

from __future__ import annotations

import re

import pytest

from callnow.telephony.sip import CallerId, Ended, Failed, RemoteSdpChanged, SipStack
from tests.peers.sipp import OFFER_SDP

pytestmark = pytest.mark.peers

VISITOR = CallerId("Mary Jones", "+61290375678")


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
    answers = [m for m in peer.received() if m.status == 200 and m.cseq[1] == "INVITE"]
    assert [direction_of(a.body) for a in answers] == ["recvonly", "sendrecv"]
    assert all("m=audio 35000" in a.body for a in answers)  # our media stays where it was
