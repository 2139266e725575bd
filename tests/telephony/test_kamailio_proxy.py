"""Our SIP stack through a real record-routing proxy (Kamailio) to a SIPp phone.

The proxy inserts Record-Route; the phone copies it into its 200 OK. From then on every
in-dialog request must take the route set (RFC 3261 12.2): our ACK and BYE go to the proxy with
a Route header naming it, and so does the phone's BYE towards us. We prove it from both ends:
the proxy's own trace (peers/kamailio/proxy.cfg logs each request with its source and top
Route) and the phone's message log (a request relayed by the proxy carries the proxy's Via on
top of ours).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callnow.telephony.sip import (
    Answered,
    CallerId,
    Credentials,
    Ended,
    EndedBy,
    Failed,
    FailureCause,
    Leg,
    SipStack,
)
from tests.peers.kamailio import KamailioProxy, TraceLine, start_kamailio
from tests.peers.sipp import OFFER_SDP, SippPeer

pytestmark = pytest.mark.peers

CALLER = CallerId("Mary", "0290375678")


async def _answered(leg: Leg, phone: SippPeer) -> None:
    """Wait for the answer and for the phone to get our ACK.

    Hanging up within a millisecond of the 200 OK would race the ACK against the BYE: the
    proxy's two workers may relay them in either order, and SIPp then fails the call on an
    "unexpected BYE". No person hangs up that fast; the tests wait as a caller would.
    """
    event = await leg.next_event(5)
    while not isinstance(event, Answered):
        assert not isinstance(event, Failed), event
        event = await leg.next_event(5)
    await asyncio.to_thread(phone.wait_for_request, "ACK")


def _requests(trace: list[TraceLine]) -> list[TraceLine]:
    """Requests the proxy received, in dialog order.

    Kamailio's workers write the log independently, so two requests handled a millisecond
    apart may be logged out of order; CSeq (and INVITE before its ACK) gives the real order.
    """
    received = [t for t in trace if t.kind == "req"]
    return sorted(received, key=lambda t: (int(t.cseq), t.method != "INVITE"))


def _proxy_port_in(value: str | None, proxy: KamailioProxy) -> bool:
    return value is not None and f"127.0.0.1:{proxy.port}" in value


def _assert_relayed_by_proxy(peer: SippPeer, method: str, proxy: KamailioProxy) -> None:
    """The phone got `method` from the proxy: the top Via is the proxy's, ours is below it."""
    (request,) = peer.received(method)
    vias = request.header_values("Via")
    assert _proxy_port_in(vias[0], proxy), f"{method} did not come through the proxy: {vias}"
    assert len(vias) >= 2, f"{method} has only the proxy's Via: {vias}"


async def test_our_ack_and_bye_follow_the_record_route(
    sip_stack: SipStack, sipp_peer, kamailio_proxy
) -> None:
    phone = sipp_peer("rr_answer.xml")
    proxy = kamailio_proxy(target=phone.address)
    our_port = sip_stack.address[1]

    # The request URI names the proxy, which forwards to its target (a PBX edge proxy).
    leg = await sip_stack.dial(proxy.uri("1001"), caller=CALLER, sdp=OFFER_SDP, ring_timeout=5)
    await _answered(leg, phone)
    await leg.hangup()
    assert isinstance(await leg.next_event(5), Ended)
    assert phone.wait() == 0, phone.diagnostics()

    # The phone's side: INVITE, ACK and BYE all arrived from the proxy.
    invite = phone.received("INVITE")[0]
    assert _proxy_port_in(invite.header("Record-Route"), proxy)
    assert ";lr" in (invite.header("Record-Route") or "")
    for method in ("INVITE", "ACK", "BYE"):
        _assert_relayed_by_proxy(phone, method, proxy)

    # The proxy's side: our ACK and BYE came to it carrying its own Route, from our port.
    proxy.wait_for_trace(lambda t: t.kind == "rpl" and t.call_id == leg.call_id and "BYE" in t.cseq)
    requests = _requests(proxy.trace(leg.call_id))
    assert [t.method for t in requests] == ["INVITE", "ACK", "BYE"], requests
    assert all(t.peer == f"127.0.0.1:{our_port}" for t in requests)
    initial, ack, bye = requests
    assert initial.route == "<null>"
    assert _proxy_port_in(ack.route, proxy) and _proxy_port_in(bye.route, proxy)
    # The 200 OK to our BYE came back from the phone through the proxy as well.
    replies = [t for t in proxy.trace(leg.call_id) if t.kind == "rpl"]
    assert any(t.method == "200" and "BYE" in t.cseq for t in replies)
    assert proxy.alive(), proxy.log_tail()


async def test_the_phones_bye_reaches_us_through_the_proxy(
    sip_stack: SipStack, sipp_peer, kamailio_proxy
) -> None:
    phone = sipp_peer("rr_answer_then_bye.xml")
    proxy = kamailio_proxy(target=phone.address)

    leg = await sip_stack.dial(proxy.uri("1001"), caller=CALLER, sdp=OFFER_SDP, ring_timeout=5)
    await _answered(leg, phone)
    ended = await leg.next_event(5)
    assert isinstance(ended, Ended) and ended.by is EndedBy.REMOTE
    assert phone.wait() == 0, phone.diagnostics()  # it got its 200 to the BYE

    # SIPp sent its BYE with the route set, and to the proxy (the only address it knows of).
    (bye_sent,) = [m for m in phone.sent() if m.method == "BYE"]
    assert _proxy_port_in(bye_sent.header("Route"), proxy)
    _assert_relayed_by_proxy(phone, "ACK", proxy)

    proxy.wait_for_trace(lambda t: t.kind == "rpl" and t.call_id == leg.call_id and "BYE" in t.cseq)
    trace = proxy.trace(leg.call_id)
    (bye,) = [t for t in _requests(trace) if t.method == "BYE"]
    assert bye.peer == f"127.0.0.1:{phone.port}"
    assert _proxy_port_in(bye.route, proxy)
    # Relayed to our Contact, and our 200 OK went back through the proxy.
    our_port = sip_stack.address[1]
    assert any(t.kind == "rpl" and t.peer == f"127.0.0.1:{our_port}" for t in trace)


async def test_as_outbound_proxy_for_a_uri_elsewhere(
    sip_stack: SipStack, sipp_peer, kamailio_proxy
) -> None:
    phone = sipp_peer("rr_answer.xml")
    # The proxy's own target is a dead port: the request must follow its request URI.
    proxy = kamailio_proxy(target=("127.0.0.1", 9))

    leg = await sip_stack.dial(
        phone.uri("1001"),
        caller=CALLER,
        sdp=OFFER_SDP,
        ring_timeout=5,
        next_hop=proxy.address,
    )
    await _answered(leg, phone)
    await leg.hangup()
    assert phone.wait() == 0, phone.diagnostics()

    for method in ("INVITE", "ACK", "BYE"):
        _assert_relayed_by_proxy(phone, method, proxy)
    assert phone.received("INVITE")[0].request_uri == phone.uri("1001")
    proxy.wait_for_trace(
        lambda t: t.kind == "req" and t.call_id == leg.call_id and t.method == "BYE"
    )
    assert [t.method for t in _requests(proxy.trace(leg.call_id))] == ["INVITE", "ACK", "BYE"]


async def test_a_trunk_behind_a_407_challenging_proxy(
    sip_stack: SipStack, sipp_peer, kamailio_proxy
) -> None:
    phone = sipp_peer("rr_answer.xml")
    trunk = sipp_peer("rr_answer.xml")
    proxy = kamailio_proxy(
        target=phone.address, target_e164=trunk.address, auth=("callnow", "s3cret")
    )

    # Wrong password: one challenge answered, the second 407 is final (no retry loop), and the
    # trunk never sees an INVITE.
    rejected = await sip_stack.dial(
        proxy.uri("+61290375678"),
        caller=CALLER,
        sdp=OFFER_SDP,
        ring_timeout=5,
        credentials=Credentials("callnow", "wrong"),
    )
    failed = await rejected.next_event(5)
    while not isinstance(failed, Failed):
        failed = await rejected.next_event(5)
    assert (failed.code, failed.cause) == (407, FailureCause.AUTH_REJECTED)

    # Right password: the trunk answers; our ACK and BYE are routed through the proxy.
    leg = await sip_stack.dial(
        proxy.uri("+61290375678"),
        caller=CALLER,
        sdp=OFFER_SDP,
        ring_timeout=5,
        credentials=Credentials("callnow", "s3cret"),
    )
    await _answered(leg, trunk)
    await leg.hangup()
    assert trunk.wait() == 0, trunk.diagnostics()

    assert len(trunk.received("INVITE")) == 1
    invite = trunk.received("INVITE")[0]
    assert invite.header("Proxy-Authorization") is None  # consumed by the proxy
    for method in ("INVITE", "ACK", "BYE"):
        _assert_relayed_by_proxy(trunk, method, proxy)
    assert phone.received() == []  # an E.164 number never went to the extensions' side

    invites = [t for t in _requests(proxy.trace(rejected.call_id)) if t.method == "INVITE"]
    assert len(invites) == 2  # the first try and one authenticated retry, no more
    # The ACK of the 407 is hop-by-hop: Kamailio's sl module absorbs it before the script.
    assert [t.method for t in _requests(proxy.trace(leg.call_id))] == [
        "INVITE",
        "INVITE",
        "ACK",
        "BYE",
    ]


def test_a_proxy_that_cannot_start_fails_the_test_with_its_log(tmp_path: Path) -> None:
    """A broken config must FAIL the test (never skip it), showing Kamailio's own words."""
    broken = tmp_path / "broken.cfg"
    broken.write_text('#!KAMAILIO\nloadmodule "tm.so"\nrequest_route { no_such_function(); }\n')

    with pytest.raises(pytest.fail.Exception) as failure:
        start_kamailio(tmp_path / "run", ("127.0.0.1", 9), config=broken)

    message = str(failure.value)
    assert "Kamailio did not start" in message
    assert "no_such_function" in message  # the log tail names what is wrong
