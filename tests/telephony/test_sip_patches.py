"""Regression tests for the runtime patches of sippy 2.5.0 (callnow/telephony/sip/patches.py).

Each patch has a unit test of the defect and, where it shows on the wire, a SIPp test.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sippy.SipURL import SipURL

from callnow.telephony.sip import (
    Answered,
    CallerId,
    Ended,
    Failed,
    SipStack,
    SipStackError,
    patches,
)
from tests.peers.sipp import OFFER_SDP

ALL_PATCHES = {
    "transport_case",
    "exceptions_to_logging",
    "parse_error_response",
    "clock_without_ctypes",
    "my_attribute_check",
    "prompt_thread_wakeups",
    "header_parse_error_response",
    "update_requests",
    "ack_before_bye",
}


@pytest.fixture(autouse=True)
def _sippy_patched() -> None:
    """The unit tests below use sippy objects without a stack; patch as a stack would."""
    patches.apply()


# A fresh interpreter: in this one, some earlier test has started a stack already.
_IMPORT_THEN_START = """
import asyncio, json
from sippy.SipURL import SipURL
original_set_params = SipURL.setParams
import callnow.telephony.sip as sip
from callnow.telephony.sip import patches
after_import = sorted(patches.applied())
untouched = SipURL.setParams is original_set_params

async def start_and_stop():
    async with sip.SipStack("127.0.0.1", 0):
        pass

asyncio.run(start_and_stop())
print(json.dumps({"after_import": after_import, "untouched": untouched,
                  "after_start": sorted(patches.applied()),
                  "patched": SipURL.setParams is not original_set_params}))
"""


def test_importing_the_package_patches_nothing_and_starting_a_stack_patches_all() -> None:
    repo = Path(__file__).parents[2]
    path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_THEN_START],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after_import"] == [] and seen["untouched"]
    assert set(seen["after_start"]) == ALL_PATCHES and seen["patched"]


def test_all_patches_are_in_effect_once_applied() -> None:
    assert patches.applied() == ALL_PATCHES


def test_each_patch_is_written_up_for_upstream() -> None:
    docs = Path(__file__).parents[2] / "docs" / "sippy-patches"  # NN-name-of-patch.md
    written_up = {path.stem.split("-", 1)[1].replace("-", "_") for path in docs.glob("[0-9]*.md")}

    assert written_up == ALL_PATCHES


async def test_a_stack_refuses_to_start_on_another_sippy_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(patches, "installed_sippy_version", lambda: "2.6.1")
    stack = SipStack("127.0.0.1", 0)

    with pytest.raises(SipStackError, match=r"sippy 2\.6\.1 is installed.*sippy 2\.5\.0 only"):
        await stack.start()
    assert not stack.running
    with pytest.raises(patches.UnsupportedSippyVersion):
        patches.apply()


def test_the_installed_sippy_is_the_supported_one() -> None:
    # If the pin moves, this fails first: review every patch against the new sippy.
    assert patches.installed_sippy_version() == patches.SUPPORTED_SIPPY_VERSION == "2.5.0"


def test_uppercase_transport_parameter_is_normalised() -> None:
    url = SipURL("sip:1001@127.0.0.1:5080;transport=UDP")

    assert url.getTAddr() == (("127.0.0.1", 5080), "udp")


def test_unpatched_sippy_keeps_the_capitals_so_the_patch_still_matters() -> None:
    # If a new sippy lower-cases by itself this fails: drop the patch then.
    url = SipURL("sip:1001@127.0.0.1:5080")
    SipURL.setParams.__wrapped__(url, ["transport=UDP"])

    assert url.transport == "UDP"


def test_swallowed_sippy_exceptions_reach_logging(caplog: pytest.LogCaptureFixture) -> None:
    from sippy import Network_server

    with caplog.at_level(logging.INFO, logger="callnow.telephony.sip.sippy"):
        try:
            raise RuntimeError("boom in a callback")
        except RuntimeError:
            Network_server.dump_exception("unhandled exception when processing incoming data")
        try:
            b"\xff\xfe".decode()
        except UnicodeDecodeError:
            Network_server.dump_exception("unhandled exception when processing incoming data")

    bug, garbage = caplog.records
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
    assert garbage.levelno == logging.INFO and garbage.exc_info is None


def test_parse_error_hands_out_its_prepared_400_without_a_request() -> None:
    from sippy.Exceptions.SipParseError import SipParseError
    from sippy.SipRequest import SipRequest

    truncated = (
        "INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: x\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 9999\r\n\r\nv=0\r\n"
    )
    with pytest.raises(SipParseError) as caught:
        SipRequest(truncated)

    # sippy's transaction manager calls getResponse() without arguments (a TypeError unpatched).
    response = caught.value.getResponse()
    assert response.getSCode()[0] == 400
    assert SipParseError("no prepared response").getResponse() is None


_FROM_WITHOUT_CLOSING_QUOTE = (
    "INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n"
    'From: "Mr. J. User <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\n'
    "Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_an_unreadable_from_becomes_a_parse_error_with_a_prepared_400() -> None:
    from sippy.Exceptions.SipParseError import SipParseError
    from sippy.SipRequest import SipRequest

    request = SipRequest(_FROM_WITHOUT_CLOSING_QUOTE)
    with pytest.raises(SipParseError) as caught:
        request.getTIds()

    response = caught.value.getResponse()
    assert response.getSCode() == (400, "Bad From Header")
    assert '\r\nFrom: "Mr. J. User <sip:a@127.0.0.1>;tag=1\r\n' in str(response)


def test_unpatched_sippy_raises_no_parse_error_so_the_patch_still_matters() -> None:
    # If a new sippy answers such a request itself this fails: drop the patch then.
    from sippy.SipRequest import SipRequest

    request = SipRequest(_FROM_WITHOUT_CLOSING_QUOTE)
    with pytest.raises(UnboundLocalError):
        SipRequest.getTIds.__wrapped__(request)


def test_an_unreadable_top_via_gets_no_prepared_response() -> None:
    from sippy.Exceptions.SipParseError import SipParseError
    from sippy.SipRequest import SipRequest

    request = SipRequest(
        _FROM_WITHOUT_CLOSING_QUOTE.replace('"Mr. J. User ', "").replace(
            "SIP/2.0/UDP 127.0.0.1", "SIP  /   2.0 /UDP 127.0.0.1"
        )
    )
    with pytest.raises(SipParseError) as caught:
        request.getTIds()

    assert caught.value.getResponse() is None


@pytest.mark.parametrize("clock", ["CLOCK_MONOTONIC", "CLOCK_REALTIME"])
def test_sippy_clock_reads_the_same_clock_without_ctypes(clock: str) -> None:
    from sippy.Time import clock_dtime

    clock_id = getattr(clock_dtime, clock)
    ctypes_read = clock_dtime.clock_getitime.__wrapped__
    assert clock_dtime.clock_getitime is not ctypes_read

    def ns(pair: tuple[int, int]) -> int:
        return pair[0] * 1_000_000_000 + pair[1]

    before = ns(ctypes_read(clock_id))
    ours = clock_dtime.clock_getitime(clock_id)
    after = ns(ctypes_read(clock_id))
    assert before <= ns(ours) <= after  # the same clock, read in between
    assert 0 <= ours[1] < 1_000_000_000 and all(isinstance(part, int) for part in ours)


def test_my_placeholder_check_answers_like_dir_and_renders_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    from sippy import SipConf as sipconf_module
    from sippy import SipURL as sipurl_module
    from sippy import SipVia as sipvia_module
    from sippy.SipConf import MyAddress, MyPort, MyTransport
    from sippy.SipVia import SipVia

    for value in (MyAddress(), MyPort(5060), MyTransport("udp"), "127.0.0.1", 5060, None, "udp"):
        assert ("my" in sipurl_module.dir(value)) == ("my" in builtins.dir(value)), value
    assert list(sipurl_module.dir("x")) == builtins.dir("x")

    def rendered() -> list[str]:
        local = (("10.0.0.7", 5070), "udp")
        mine = SipURL(username="1001", host=MyAddress(), port=MyPort(5060))
        mine.transport = MyTransport("udp")
        theirs = SipURL("sip:1002@127.0.0.1:5080;transport=udp;lr")
        via = SipVia()  # our own Via: My* host, port and transport
        return [mine.localStr(local), theirs.localStr(local), via.localStr(local)]

    patched = rendered()
    for module in (sipurl_module, sipvia_module, sipconf_module):
        monkeypatch.delattr(module, "dir")  # back to the builtin
    assert rendered() == patched
    assert patched[0] == "sip:1001@10.0.0.7:5070"


@pytest.mark.peers
async def test_bye_reaches_a_peer_whose_contact_says_transport_UDP(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer_transport_upper.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=CallerId("Mary", "0290375678"), sdp=OFFER_SDP, ring_timeout=2.0
    )
    event = await leg.next_event(5)
    assert isinstance(event, Answered), event

    await leg.hangup()

    assert isinstance(await leg.next_event(5), Ended)
    assert peer.wait() == 0, peer.diagnostics()
    assert len(peer.received("BYE")) == 1
    assert peer.received("BYE")[0].request_uri.endswith(";transport=udp")


@pytest.mark.peers
async def test_an_answer_crossing_our_cancel_is_acked_before_the_bye(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer_over_cancel.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=CallerId("Mary", "0290375678"), sdp=OFFER_SDP, ring_timeout=5.0
    )
    await leg.next_event(5)  # 180 Ringing
    await leg.hangup()

    assert isinstance(await leg.next_event(5), Failed)
    assert peer.wait() == 0, peer.diagnostics()  # the scenario insists on ACK, then BYE
    methods = [m.method for m in peer.received() if m.method]
    assert methods == ["INVITE", "CANCEL", "ACK", "BYE"], methods


@pytest.mark.peers
async def test_an_update_while_the_callee_rings_is_answered(sip_stack: SipStack, sipp_peer) -> None:
    """RFC 3311 in an early dialog: without a body 200 OK with our Contact, with an offer 491
    (our INVITE's offer is still unanswered); the call is answered after, as usual."""
    peer = sipp_peer("update_while_ringing.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=CallerId("Mary", "0290375678"), sdp=OFFER_SDP, ring_timeout=5.0
    )
    while not isinstance(event := await leg.next_event(5), Answered):
        assert not isinstance(event, Failed | Ended), event
    await leg.hangup()

    assert isinstance(await leg.next_event(5), Ended)
    assert peer.wait() == 0, peer.diagnostics()  # the scenario checks each answer's code
    answers = [(m.status, m.body) for m in peer.received() if m.cseq[1] == "UPDATE"]
    assert answers == [(200, ""), (491, "")], answers


@pytest.fixture
def hourly_ticker() -> Iterator[patches.WakeableTicker]:
    """A ticker whose next tick is an hour away, run by a thread of its own as ED2's is."""
    ticker = patches.WakeableTicker(freq=1 / 3600)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            ticker.procrastinate()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield ticker
    stop.set()
    ticker.call_from_thread(lambda: None)
    thread.join(5)


def test_a_call_from_another_thread_wakes_the_ticker_before_its_next_tick(
    hourly_ticker: patches.WakeableTicker,
) -> None:
    ran = threading.Event()

    hourly_ticker.call_from_thread(ran.set)

    assert ran.wait(10), "the call waited for the tick an hour away"


def test_calls_from_other_threads_run_in_the_order_they_were_handed_over(
    hourly_ticker: patches.WakeableTicker,
) -> None:
    seen: list[int] = []
    done = threading.Event()

    for number in range(100):
        hourly_ticker.call_from_thread(seen.append, number)
    hourly_ticker.call_from_thread(done.set)

    assert done.wait(10)
    assert seen == list(range(100))


def test_the_ticker_still_returns_at_each_tick_with_nothing_to_do() -> None:
    ticker = patches.WakeableTicker(freq=1000)
    ticks = threading.Thread(target=lambda: [ticker.procrastinate() for _ in range(20)])

    ticks.start()
    ticks.join(10)

    assert not ticks.is_alive()


def test_sippy_event_loop_runs_on_the_wakeable_ticker() -> None:
    from sippy.Core.EventDispatcher import ED2

    assert isinstance(ED2.elp, patches.WakeableTicker)


def test_every_dialog_state_has_an_answer_for_update() -> None:
    """Unpatched, no state handles UPDATE and the request goes unanswered; the live answer
    (hold and resume by UPDATE) is tested in tests/engine/test_live_reinvite.py."""
    from sippy.UacStateRinging import UacStateRinging
    from sippy.UacStateTrying import UacStateTrying
    from sippy.UacStateUpdating import UacStateUpdating
    from sippy.UasStateUpdating import UasStateUpdating
    from sippy.UaStateConnected import UaStateConnected

    for state in (UaStateConnected, UacStateUpdating, UasStateUpdating):
        assert "UPDATE" in state.recv_request_handlers, state
        assert "INVITE" in state.recv_request_handlers, state  # sippy's own handlers kept
    for state in (UacStateTrying, UacStateRinging):  # an early dialog: the callee rings
        assert "UPDATE" in state.recv_request_handlers, state
