"""What reaches SIP headers: names cleaned and quoted, numbers validated, bad input refused.

The domain normalises numbers and names before they get here; these checks are the second
line of defence and must hold on their own.
"""

from __future__ import annotations

import pytest

from callnow.telephony.sip import (
    Answered,
    CallerId,
    Credentials,
    InvalidSipInput,
    SipStack,
    SipStackError,
)
from callnow.telephony.sip.dtmf import parse_dtmf_body
from callnow.telephony.sip.headers import build_extra_headers, clean_display_name
from tests.peers.sipp import OFFER_SDP, parse_message_log


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Mary Jones", "Mary Jones"),
        ('Mary "the boss" Jones', "Mary the boss Jones"),
        ("Mary\r\nX-Evil: 1", "Mary X-Evil: 1"),
        ("back\\slash\x00nul", "back slash nul"),
        ("line\u2028separator\u0085next", "line separator next"),
        ("  Zoë   Ørsted ", "Zoë Ørsted"),
        ("x" * 200, "x" * 64),
        ('"\r\n"', ""),
    ],
)
def test_display_names_lose_everything_that_could_break_a_header(raw: str, clean: str) -> None:
    assert clean_display_name(raw) == clean


@pytest.mark.parametrize("number", ["+61290375678", "0290375678", "1001"])
def test_caller_numbers_are_digits_with_an_optional_plus(number: str) -> None:
    assert CallerId("Mary", number).number == number


@pytest.mark.parametrize(
    "number", ["", "+", "02 9037 5678", "1001@evil", "1001>", "++61", "61-2", "١٢٣", "1" * 33]
)
def test_anything_else_as_a_caller_number_is_refused(number: str) -> None:
    with pytest.raises(InvalidSipInput):
        CallerId("Mary", number)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Test": "a\r\nInjected: 1"},
        {"Bad Name": "x"},
        {"From": "<sip:spoof@evil>"},
        {"Proxy-Authorization": "Digest x"},
    ],
)
def test_extra_headers_are_single_line_and_never_override_the_stacks_own(
    headers: dict[str, str],
) -> None:
    with pytest.raises(InvalidSipInput):
        build_extra_headers(headers)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/dtmf-relay", "Signal=1\r\nDuration=160\r\n", ("1", 160)),
        ("Application/DTMF-Relay; charset=x", "signal= #\nduration=100", ("#", 100)),
        ("application/dtmf-relay", "Signal=10\r\n", ("*", None)),
        ("application/dtmf", "2", ("2", None)),
        ("application/dtmf", "11\r\n", ("#", None)),
        ("application/dtmf-relay", "Signal=X\r\n", None),
        ("application/dtmf", "", None),
        ("text/plain", "1", None),
    ],
)
def test_dtmf_info_bodies(content_type: str, body: str, expected: tuple | None) -> None:
    assert parse_dtmf_body(content_type, body) == expected


def test_the_message_log_parser_reads_sipp_traces() -> None:
    log = (
        "----------------------------------------------- 2026-01-01 00:00:00.000000\r\n"
        "UDP message received [100] bytes :\r\n\r\n"
        "INVITE sip:1001@127.0.0.1:5080 SIP/2.0\r\n"
        "f: <sip:1@127.0.0.1>;tag=a\r\n"
        "Subject: folded\r\n  line\r\n"
        "Content-Length: 4\r\n\r\n"
        "v=0\r\n\r\n"
        "----------------------------------------------- 2026-01-01 00:00:00.100000\r\n"
        "UDP message sent (50 bytes):\r\n\r\n"
        "SIP/2.0 486 Busy Here\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
    )

    invite, busy = parse_message_log(log)

    assert (invite.direction, invite.method, invite.status) == ("received", "INVITE", None)
    assert invite.header("From") == "<sip:1@127.0.0.1>;tag=a"
    assert invite.header("subject") == "folded line"
    assert invite.body == "v=0"
    assert (busy.direction, busy.status, busy.cseq) == ("sent", 486, (7, "INVITE"))


@pytest.mark.peers
async def test_a_hostile_name_reaches_the_phone_only_cleaned_and_quoted(
    sip_stack: SipStack, sipp_peer
) -> None:
    peer = sipp_peer("answer.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"),
        caller=CallerId('Mary"\r\nContact: <sip:evil@6.6.6.6>\\', "0290375678"),
        sdp=OFFER_SDP,
        ring_timeout=2.0,
        extra_headers={"X-CallNow-Request": "42"},
    )
    while not isinstance(await leg.next_event(5), Answered):
        pass
    await leg.hangup()
    assert peer.wait() == 0, peer.diagnostics()

    invite = peer.received("INVITE")[0]
    assert invite.header("From").startswith('"Mary Contact: <sip:evil@6.6.6.6>" <sip:0290375678@')
    assert len(invite.header_values("Contact")) == 1
    assert "evil" not in invite.header("Contact")
    assert invite.header("X-CallNow-Request") == "42"


@pytest.mark.peers
async def test_refused_input_sends_nothing(sip_stack: SipStack, sipp_peer) -> None:
    peer = sipp_peer("answer.xml")

    with pytest.raises(InvalidSipInput):
        await sip_stack.dial(
            peer.uri("1001>;evil"), caller=CallerId("", "1"), sdp=OFFER_SDP, ring_timeout=2.0
        )
    with pytest.raises(InvalidSipInput):
        await sip_stack.dial(
            peer.uri("alice"), caller=CallerId("", "1"), sdp=OFFER_SDP, ring_timeout=2.0
        )
    with pytest.raises(InvalidSipInput):
        await sip_stack.dial(
            peer.uri("1001"),
            caller=CallerId("", "1"),
            sdp=OFFER_SDP,
            ring_timeout=2.0,
            credentials=Credentials('us"er', "pw"),
        )
    # Prove the peer is listening and would have logged an INVITE: send a real one last.
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=CallerId("", "1"), sdp=OFFER_SDP, ring_timeout=2.0
    )
    while not isinstance(await leg.next_event(5), Answered):
        pass
    await leg.hangup()
    assert peer.wait() == 0, peer.diagnostics()

    assert len(peer.received("INVITE")) == 1


async def test_one_stack_per_process_and_restartable(sip_stack: SipStack) -> None:
    with pytest.raises(SipStackError, match="already running"):
        await SipStack("127.0.0.1", 0).start()

    await sip_stack.stop()
    with pytest.raises(SipStackError):
        await sip_stack.dial("sip:1@127.0.0.1:9", caller=CallerId("", "1"), sdp="", ring_timeout=1)

    other = SipStack("127.0.0.1", 0)
    await other.start()
    try:
        assert other.address[1] > 0
    finally:
        await other.stop()
    await sip_stack.start()  # the fixture stops it again


async def test_a_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        stack = SipStack("127.0.0.1", taken.getsockname()[1])
        with pytest.raises(SipStackError, match="cannot listen"):
            await stack.start()
    # The failed start left nothing behind: another stack can start.
    async with SipStack("127.0.0.1", 0) as again:
        assert again.running


async def test_the_stack_is_built_from_the_sip_settings_and_refuses_a_wildcard() -> None:
    from callnow.config import SipSettings

    stack = SipStack.from_settings(SipSettings(listen_host="127.0.0.1", listen_port=5099))
    assert (stack.host, stack.port) == ("127.0.0.1", 5099)

    with pytest.raises(SipStackError, match="wildcard"):
        await SipStack("0.0.0.0", 0).start()
