"""A leg's prepared hangup ends the call from outside its dialog, as after an engine's crash.

The request each leg keeps ready (the INVITE's CANCEL while it rings, a BYE once answered) is
sent from a socket of its own, as the next engine sends it, to a real SIPp phone; the phone
must take it for its call's CANCEL or BYE and answer it as such.
"""

from __future__ import annotations

import asyncio

import pytest

from callnow.telephony.sip import Answered, CallerId, HangupPrepared, Ringing, SipStack
from callnow.telephony.sip.prepared import send_prepared
from tests.peers.sipp import OFFER_SDP

pytestmark = pytest.mark.peers

VISITOR = CallerId("Mary Jones", "+61290375678")
EVENT_TIMEOUT = 5.0


async def wait_for_prepared(leg, method: str) -> HangupPrepared:
    async with asyncio.timeout(EVENT_TIMEOUT):
        while leg.prepared_hangup is None or leg.prepared_hangup.method != method:
            await asyncio.sleep(0.01)
    return leg.prepared_hangup


async def test_a_ringing_leg_s_prepared_cancel_cancels_its_invite(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("ring_forever.xml")
    leg = await sip_stack.dial(peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=30)
    assert isinstance(await leg.next_event(EVENT_TIMEOUT), Ringing)
    cancel = await wait_for_prepared(leg, "CANCEL")

    await send_prepared(cancel.message, cancel.target, local_host="127.0.0.1")

    # The phone matched it to the INVITE: it answers 487, which reaches the dialling stack.
    failed = await leg.next_event(EVENT_TIMEOUT)
    assert getattr(failed, "code", None) == 487
    [received] = peer.received("CANCEL")
    invite = peer.received("INVITE")[0]
    assert received.header("Call-ID") == invite.header("Call-ID") == leg.call_id
    assert received.header("Via") == invite.header("Via")  # same branch: the same transaction
    assert received.header("CSeq").split()[0] == invite.header("CSeq").split()[0]


async def test_an_answered_leg_s_prepared_bye_ends_its_dialog(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer.xml")
    leg = await sip_stack.dial(peer.uri("1001"), caller=VISITOR, sdp=OFFER_SDP, ring_timeout=30)
    assert isinstance(await leg.next_event(EVENT_TIMEOUT), Ringing)
    assert isinstance(await leg.next_event(EVENT_TIMEOUT), Answered)
    bye = await wait_for_prepared(leg, "BYE")
    await asyncio.to_thread(peer.wait_for_request, "ACK")  # the call is up on the phone

    await send_prepared(bye.message, bye.target, local_host="127.0.0.1")

    assert peer.wait() == 0, peer.diagnostics()  # the scenario's BYE, answered 200
    [received] = peer.received("BYE")[:1]
    invite = peer.received("INVITE")[0]
    assert received.header("Call-ID") == leg.call_id
    assert received.header("From") == invite.header("From")  # our tag
    assert ";tag=" in received.header("To")  # the phone's tag: in the dialog
    assert int(received.header("CSeq").split()[0]) > int(invite.header("CSeq").split()[0])
