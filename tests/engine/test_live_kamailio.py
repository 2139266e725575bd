"""A whole callback with Kamailio between the engine and both phones.

The proxy (peers/kamailio/proxy.cfg) sends extension numbers to the owner's SIPp and E.164
numbers to the trunk's SIPp, challenges trunk INVITEs with 407, and record-routes every dialog:
so the owner's INFO key, our ACKs and BYEs, and the visitor's BYE must all follow the route
set through it. Both ends are checked: what the phones received (the proxy's Via on top) and
what the proxy logged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import (
    OWNER_EXTERNAL,
    TRUNK_PASSWORD,
    TRUNK_USER,
    VISITOR_NUMBER,
    facts,
    live_rig,
    methods_received,
    uri_user,
    wait_for_exit,
)
from tests.peers.kamailio import KamailioProxy
from tests.peers.sipp import SippPeer

pytestmark = pytest.mark.peers


def relayed_by(proxy: KamailioProxy, phone: SippPeer, method: str) -> bool:
    """Did every `method` the phone received come through the proxy (its Via on top)?"""
    received = phone.received(method)
    return bool(received) and all(
        f"127.0.0.1:{proxy.port}" in (m.header_values("Via") or [""])[0] for m in received
    )


async def test_callback_through_a_record_routing_proxy(
    sipp_peer, kamailio_proxy, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("rr_answer_info_dtmf.xml", {"digit": "1"})
    trunk = sipp_peer("rr_answer_then_bye.xml")
    proxy = kamailio_proxy(
        target=owner.address, target_e164=trunk.address, auth=(TRUNK_USER, TRUNK_PASSWORD)
    )
    async with live_rig(
        owner,
        trunk,
        rtpengine_settings,
        tmp_path / "prompts",
        tmp_path,
        owner_uri_template=f"sip:{{internal}}@127.0.0.1:{proxy.port}",
        trunk_uri_template=f"sip:{{e164}}@127.0.0.1:{proxy.port}",
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))
        our_port = rig.telephony.sip_address[1]

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "requester_hung_up")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()

    # The owner: rung through the proxy, and our ACK and BYE followed its Record-Route.
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    for method in ("INVITE", "ACK", "BYE"):
        assert relayed_by(proxy, owner, method), method
    # The trunk: one INVITE (the proxy consumed our credentials), our ACK through the proxy,
    # and its own BYE sent with the route set, to the proxy.
    assert methods_received(trunk) == ["INVITE", "ACK"]
    for method in ("INVITE", "ACK"):
        assert relayed_by(proxy, trunk, method), method
    (bye_sent,) = [m for m in trunk.sent() if m.method == "BYE"]
    assert f"127.0.0.1:{proxy.port}" in (bye_sent.header("Route") or "")
    invite = trunk.received("INVITE")[0]
    assert uri_user(invite.header("From")) == OWNER_EXTERNAL
    assert invite.request_uri is not None and VISITOR_NUMBER in invite.request_uri

    # The proxy's side: it challenged our first trunk INVITE and saw the dialogs' requests.
    # Kamailio's workers log independently: wait for the last line of the story first.
    owner_at = f"127.0.0.1:{owner.port}"
    await asyncio.to_thread(
        proxy.wait_for_trace, lambda t: t.kind == "rpl" and "BYE" in t.cseq and t.peer == owner_at
    )
    trace = proxy.trace()
    from_us = [t for t in trace if t.kind == "req" and t.peer == f"127.0.0.1:{our_port}"]
    assert [t.method for t in from_us].count("INVITE") == 3  # owner, trunk, trunk with auth
    assert {"ACK", "BYE"} <= {t.method for t in from_us}
    assert any(t.kind == "req" and t.method == "INFO" for t in trace)  # the owner's key
    assert any(
        t.kind == "req" and t.method == "BYE" and t.peer == f"127.0.0.1:{trunk.port}" for t in trace
    )
    assert proxy.alive(), proxy.log_tail()

    for role in LegRole:
        assert rig.record(role).disposition is Disposition.ANSWERED


async def test_outbound_proxy_carries_both_legs_and_the_trunk_from_domain_is_used(
    sipp_peer, kamailio_proxy, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    """URIs name the phones themselves; every request still goes to the outbound proxy
    (whose own target is a dead port, so only the request URI can route it)."""
    owner = sipp_peer("rr_answer_info_dtmf.xml", {"digit": "1"})
    trunk = sipp_peer("rr_answer_then_bye.xml")
    proxy = kamailio_proxy(target=("127.0.0.1", 9))
    async with live_rig(
        owner,
        trunk,
        rtpengine_settings,
        tmp_path / "prompts",
        tmp_path,
        outbound_proxy=proxy.address,
        trunk_from_domain="trunk.example",
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "requester_hung_up")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    for phone in (owner, trunk):
        assert relayed_by(proxy, phone, "INVITE") and relayed_by(proxy, phone, "ACK")
    assert relayed_by(proxy, owner, "BYE")
    invite = trunk.received("INVITE")[0]
    assert invite.request_uri == f"sip:{VISITOR_NUMBER}@127.0.0.1:{trunk.port}"
    assert f"<sip:{OWNER_EXTERNAL}@trunk.example>" in (invite.header("From") or "")
    assert f"<sip:{OWNER_EXTERNAL}@trunk.example>" in (invite.header("P-Asserted-Identity") or "")
