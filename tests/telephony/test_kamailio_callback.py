"""A whole callback with Kamailio between the engine and both phones.

Kamailio plays the PBX edge: extensions (the owner's internal number) go to the owner's phone,
E.164 numbers go to the trunk, and the trunk side asks for digest credentials (407). Both URI
templates name the proxy, so every SIP message of the callback crosses it. The proof is in
both logs: the proxy's trace shows each in-dialog request arriving with its Record-Route as
Route, from the side that sent it; the phones show the proxy's Via on top of what they got.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings, Settings, SipSettings, TrunkSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.flow import AcceptanceMode, FlowLimits, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.live import LiveTelephony
from callnow.engine.runner import CallbackEngine
from tests.engine.fakes import FakeRecorder
from tests.peers.kamailio import KamailioProxy, TraceLine
from tests.peers.sipp import SipMessage, SippPeer
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

VISITOR = "+61290375678"
OWNER_INTERNAL = "1001"
OWNER_EXTERNAL = "+61299990000"
TRUNK_USER, TRUNK_PASSWORD = "callnow", "s3cret"
LIMITS = FlowLimits(owner_ring_s=5, visitor_ring_s=5, digit_wait_s=5, max_call_duration_s=20)
# How long a step may wait for the peers; a limit, never a speed assertion.
STEP_TIMEOUT_S = 15.0


def _dialog_requests(trace: list[TraceLine]) -> list[tuple[str, str]]:
    """(method, source) of each request the proxy received, in dialog (CSeq) order.

    Requests from the two ends have CSeq spaces of their own; within each, CSeq orders them,
    and Kamailio's workers may log two near-simultaneous requests out of order.
    """
    requests = [t for t in trace if t.kind == "req"]
    ordered = sorted(requests, key=lambda t: (t.peer, int(t.cseq), t.method != "INVITE"))
    return [(t.method, t.peer) for t in ordered]


def _routed_via_proxy(trace: list[TraceLine], proxy: KamailioProxy) -> bool:
    """Every in-dialog request (all but the INVITEs) carried the proxy's Record-Route."""
    in_dialog = [t for t in trace if t.kind == "req" and t.method != "INVITE"]
    return bool(in_dialog) and all(f"127.0.0.1:{proxy.port}" in t.route for t in in_dialog)


def _top_via_is_proxy(message: SipMessage, proxy: KamailioProxy) -> bool:
    vias = message.header_values("Via")
    return bool(vias) and f"127.0.0.1:{proxy.port}" in vias[0] and len(vias) >= 2


async def _wait_exit(peer: SippPeer) -> int:
    return await asyncio.to_thread(peer.wait, STEP_TIMEOUT_S)


async def test_a_callback_through_kamailio_on_both_legs(
    sipp_peer, kamailio_proxy, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("rr_answer_info_dtmf.xml", {"digit": "1"})  # accepts by SIP INFO
    trunk = sipp_peer("rr_answer_then_bye.xml")  # the visitor answers, then hangs up
    proxy = kamailio_proxy(
        target=owner.address, target_e164=trunk.address, auth=(TRUNK_USER, TRUNK_PASSWORD)
    )
    settings = Settings(
        data_dir=tmp_path,
        demo_data=False,
        sip=SipSettings(
            listen_host="127.0.0.1",
            listen_port=free_port(),
            owner_uri_template=f"sip:{{internal}}@127.0.0.1:{proxy.port}",
        ),
        trunk=TrunkSettings(
            uri_template=f"sip:{{e164}}@127.0.0.1:{proxy.port}",
            username=TRUNK_USER,
            password=TRUNK_PASSWORD,
        ),
        rtpengine=rtpengine_settings.model_copy(update={"mode": "spawn"}),
    )
    facts = RequestFacts(
        request_ref="req-kamailio",
        visitor_e164=VISITOR,
        owner_internal_number=OWNER_INTERNAL,
        owner_external_e164=OWNER_EXTERNAL,
        acceptance=AcceptanceMode.CONFIRM,
        caller_name="Mary Jones",
    )
    recorder = FakeRecorder()
    telephony = await LiveTelephony.start(settings, prompt_cache_dir=tmp_path / "prompts")
    engine = CallbackEngine(telephony, recorder, limits=LIMITS)
    try:
        handle = await engine.start_callback(facts)
        async with asyncio.timeout(30):
            outcome = await handle.outcome
        our_port = telephony.sip_address[1]
    finally:
        await engine.shutdown("test_over")
        await telephony.stop()

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "requester_hung_up")
    assert (RequestState.CALLING_VISITOR, "owner_pressed_1") in recorder.states
    assert await _wait_exit(owner) == 0, owner.diagnostics()
    assert await _wait_exit(trunk) == 0, trunk.diagnostics()
    for role in LegRole:
        assert recorder.record_of(role).disposition is Disposition.ANSWERED

    # The phones: all they received came from the proxy; what they sent carried its Route.
    owner_got, trunk_got = owner.received(), trunk.received()
    assert [m.method for m in owner_got if m.method] == ["INVITE", "ACK", "BYE"]
    assert [m.method for m in trunk_got if m.method] == ["INVITE", "ACK"]
    assert all(_top_via_is_proxy(m, proxy) for m in owner_got + trunk_got if m.method)
    for phone, method in ((owner, "INFO"), (trunk, "BYE")):
        (sent,) = [m for m in phone.sent() if m.method == method]
        assert f"127.0.0.1:{proxy.port}" in (sent.header("Route") or ""), sent
    trunk_invite = trunk.received("INVITE")[0]
    assert trunk_invite.request_uri == f"sip:{VISITOR}@127.0.0.1:{proxy.port}"
    assert f"sip:{OWNER_EXTERNAL}@" in (trunk_invite.header("From") or "")
    assert trunk_invite.header("Proxy-Authorization") is None  # consumed by the proxy

    # The proxy: each leg's dialog, request by request, with where each came from.
    us, owner_at, trunk_at = (f"127.0.0.1:{p}" for p in (our_port, owner.port, trunk.port))
    owner_call = owner.received("INVITE")[0].header("Call-ID") or ""
    trunk_call = trunk_invite.header("Call-ID") or ""

    def wait_for_200_to(call_id: str, method: str) -> None:
        proxy.wait_for_trace(
            lambda t: t.kind == "rpl" and t.call_id == call_id and t.cseq.endswith(method)
        )

    wait_for_200_to(owner_call, "BYE")
    wait_for_200_to(trunk_call, "BYE")
    owner_trace, trunk_trace = proxy.trace(owner_call), proxy.trace(trunk_call)
    assert sorted(_dialog_requests(owner_trace)) == sorted(
        [("INVITE", us), ("ACK", us), ("BYE", us), ("INFO", owner_at)]
    )
    assert sorted(_dialog_requests(trunk_trace)) == sorted(
        # The first INVITE drew the 407 (its ACK is absorbed by Kamailio's sl module).
        [("INVITE", us), ("INVITE", us), ("ACK", us), ("BYE", trunk_at)]
    )
    assert _routed_via_proxy(owner_trace, proxy), owner_trace
    assert _routed_via_proxy(trunk_trace, proxy), trunk_trace
    assert proxy.alive(), proxy.log_tail()
