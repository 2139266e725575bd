"""More garbage on our SIP port, beyond test_sip_robustness.py's torture list.

test_sip_robustness.py floods the idle stack with broken datagrams. This module adds:

- RFC 4475 messages that are *valid* however odd they look (wsinv, intmeth, esc01-style,
  lwsdispname, long values): each must be parsed and answered like any other request,
  which proves the stack does not merely survive them by dropping them;
- the missing-mandatory-header and oversize cases (no Call-ID / Via / CSeq / From, a huge
  Content-Length, NUL bytes inside headers, a 64 KiB datagram, a burst of random datagrams);
- garbage aimed at a *live* dialog (its Call-ID and tags), which must neither end the call nor
  make up a DTMF digit.

Every forged message carries a Via naming the test's own socket, so answers come back to us.
The last test sends the garbage to the live engine's port and then runs a whole callback.
After each test the sippy thread is alive and a normal leg to a SIPp phone completes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings, Settings, SipSettings, TrunkSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.flow import AcceptanceMode, FlowLimits, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.live import LiveTelephony
from callnow.engine.runner import CallbackEngine
from callnow.telephony.sip import Answered, CallerId, Digit, Ended, Leg, LegState, SipStack
from callnow.telephony.sip.reactor import reactor
from tests.engine.fakes import FakeRecorder
from tests.peers.sipp import OFFER_SDP, SippPeer
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

CALLER = CallerId("Mary", "0290375678")
# UDP's largest payload over IPv4; sippy reads 8 KiB per datagram, the kernel drops the rest.
MAX_UDP_PAYLOAD = 65_507


def _crlf(text: str) -> bytes:
    """Messages below are written with \\n; SIP wants CRLF line ends."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _call_id() -> str:
    return f"garbage-{os.urandom(6).hex()}"


def _branch() -> str:
    return f"z9hG4bK-{os.urandom(5).hex()}"


class Attacker:
    """A UDP socket of the test that sends to the stack and collects the answers."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.replies: list[bytes] = []

    def via(self) -> str:
        return f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={_branch()}"

    def send(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.target)

    async def reply_for(self, call_id: str, timeout: float = 5.0) -> bytes:
        """The first answer whose Call-ID is `call_id` (others are kept for later)."""
        loop = asyncio.get_running_loop()
        needle = re.compile(
            rb"^(?:Call-ID|i)\s*:\s*" + re.escape(call_id.encode()) + rb"\s*$", re.I | re.M
        )
        async with asyncio.timeout(timeout):
            while True:
                for reply in self.replies:
                    if needle.search(reply):
                        return reply
                self.replies.append(await loop.sock_recv(self.sock, 65535))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def attacker(sip_stack: SipStack) -> Iterator[Attacker]:
    sender = Attacker(sip_stack.address)
    try:
        yield sender
    finally:
        sender.close()


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _assert_sippy_thread_alive() -> None:
    assert reactor.running
    names = [t.name for t in threading.enumerate()]
    assert "sippy-ed2" in names


async def _options_answered(attacker: Attacker, within_s: float = 15.0) -> None:
    """An OPTIONS gets its 200. Re-sent every half second: after a burst the kernel may have
    dropped the first copies from a full socket buffer, which is UDP, not a stall."""
    call_id = _call_id()
    options = _crlf(
        f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\n{attacker.via()}\nMax-Forwards: 70\n"
        f"From: <sip:probe@127.0.0.1>;tag=p1\nTo: <sip:1001@127.0.0.1>\n"
        f"Call-ID: {call_id}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        attacker.send(options)
        try:
            reply = await attacker.reply_for(call_id, timeout=0.5)
            break
        except TimeoutError:
            if loop.time() > deadline:
                raise
    assert _status(reply) == 200


async def _normal_leg_completes(stack: SipStack, peer: SippPeer) -> None:
    leg = await stack.dial(peer.uri("1001"), caller=CALLER, sdp=OFFER_SDP, ring_timeout=5)
    event = await leg.next_event(5)
    while not isinstance(event, Answered):
        event = await leg.next_event(5)
    await leg.hangup()
    assert isinstance(await leg.next_event(5), Ended)
    assert peer.wait() == 0, peer.diagnostics()


# -- RFC 4475 section 3.1.1: valid messages that look wrong ------------------------------------


def valid_torture(attacker: Attacker) -> list[tuple[str, str, bytes, int | None]]:
    """(name, Call-ID, datagram, the status our UAC-only stack must answer with, or None for
    a message sippy 2.5.0 is known to drop)."""
    port = attacker.port
    cases = []

    # wsinv: folded header lines, tabs, odd spacing, compact and long header names mixed.
    # RFC 4475 also puts LWS around the Via's slashes ("SIP  /   2.0 / UDP"); sippy 2.5.0
    # cannot parse that Via (IndexError in its Via parser) and drops the message unanswered,
    # so it is its own case below, expected to be dropped, not answered.
    for name, via, status in (
        ("wsinv", f"Via: SIP/2.0/UDP\n    127.0.0.1:{port};branch={_branch()}", 403),
        (
            "wsinv-via-lws",
            f"Via  : SIP  /   2.0\n /UDP\n    127.0.0.1:{port};branch={_branch()}",
            None,
        ),
    ):
        call_id = _call_id()
        cases.append(
            (
                name,
                call_id,
                _crlf(
                    "INVITE sip:vivekg@127.0.0.1;unknownparam SIP/2.0\n"
                    "TO :\n sip:vivekg@127.0.0.1 ;   tag    = 1918181833n\n"
                    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@127.0.0.1>\n'
                    "  ;\n  tag = 98asjd8\n"
                    "MaX-fOrWaRdS: 0068\n"
                    f"Call-ID\n    : {call_id}\n"
                    "Content-Length   : 0\n"
                    "cseq: 0009\n  INVITE\n"
                    f"{via}\n"
                    "s :\n"
                    "NewFangledHeader:   newfangled value\n continued newfangled value\n"
                    "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
                    'm:"Quoted string \\"\\"" <sip:jdrosen@127.0.0.1 ; newparam =\n'
                    "      newvalue ;\n  secondparam ; q = 0.33>\n\n"
                ),
                status,  # 403: parsed, an incoming INVITE, which a UAC-only stack refuses
            )
        )

    call_id = _call_id()
    # intmeth: an extension method made of every token character.
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    cases.append(
        (
            "intmeth",
            call_id,
            _crlf(
                f"{method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,"
                "weird!*pas$wo~d_too.(doesn't-it)@127.0.0.1 SIP/2.0\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={_branch()}\n"
                'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/'
                "crazy?,/;;*@127.0.0.1>\n"
                "From: token1~` token2'+_ token3*%!.- <sip:mundane@127.0.0.1>;"
                "fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\""
                ";tag=_token~1'+`*%!-.\n"
                f"Call-ID: {call_id}\n"
                f"CSeq: 139122385 {method}\n"
                "Max-Forwards: 255\n"
                "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\n"
                "Content-Length: 0\n\n"
            ),
            501,  # parsed: an unknown method is not implemented
        )
    )

    call_id = _call_id()
    # esc01-style: escaped characters in the request URI's user part and in From.
    cases.append(
        (
            "esc01",
            call_id,
            _crlf(
                "OPTIONS sip:sips%3Auser%40example.com@127.0.0.1;other-param=summit SIP/2.0\n"
                "To: sip:%75se%72@127.0.0.1\n"
                "From: <sip:I%20have%20spaces@127.0.0.1>;tag=938\n"
                "Max-Forwards: 87\n"
                f"Call-ID: {call_id}\n"
                "CSeq: 1 OPTIONS\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={_branch()}\n"
                "Content-Length: 0\n\n"
            ),
            200,
        )
    )

    call_id = _call_id()
    # lwsdispname and a display name with a quoted comma; long but legal values (longreq).
    long_tag = "t" * 900
    cases.append(
        (
            "lwsdispname+longreq",
            call_id,
            _crlf(
                "OPTIONS sip:user@127.0.0.1 SIP/2.0\n"
                f"To: sip:user@127.0.0.1;tag={long_tag}\n"
                f"From: caller<sip:caller@127.0.0.1>;tag=323\n"
                'Contact: "Doe, Jane" <sip:jane@127.0.0.1>\n'
                "Max-Forwards: 70\n"
                f"Call-ID: {call_id}\n"
                "CSeq: 2 OPTIONS\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={_branch()}\n"
                + "".join(
                    f"Via: SIP/2.0/UDP 127.0.0.{i}:5060;branch={_branch()}\n" for i in range(2, 30)
                )
                + "Content-Length: 0\n\n"
            ),
            481,  # a To tag for a dialog we do not have
        )
    )
    return cases


async def test_odd_but_valid_rfc4475_messages_are_parsed_and_answered(
    sip_stack: SipStack, attacker: Attacker, sipp_peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip")
    cases = valid_torture(attacker)
    for case in cases:
        attacker.send(case[2])
    answered = {
        name: _status(await attacker.reply_for(cid)) for name, cid, _, status in cases if status
    }
    await _options_answered(attacker)  # the stack handles datagrams in order: all were seen

    assert answered == {name: status for name, _, _, status in cases if status}
    dropped = {cid for _, cid, _, status in cases if status is None}
    assert not [r for r in attacker.replies if any(cid.encode() in r for cid in dropped)]
    # Dropped as unparseable input (INFO), not through a bug path (ERROR).
    assert any("can't parse" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    _assert_sippy_thread_alive()
    await _normal_leg_completes(sip_stack, sipp_peer("answer.xml"))


# -- broken messages ---------------------------------------------------------------------------


def _without(header: str, call_id: str, port: int, method: str = "OPTIONS") -> bytes:
    lines = [
        f"{method} sip:1001@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={_branch()}",
        "Max-Forwards: 70",
        "From: <sip:a@127.0.0.1>;tag=x1",
        "To: <sip:1001@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        "Content-Length: 0",
    ]
    kept = [line for line in lines if not line.lower().startswith(header.lower() + ":")]
    return ("\r\n".join(kept) + "\r\n\r\n").encode()


def broken_messages(port: int) -> list[bytes]:
    call_ids = [_call_id() for _ in range(12)]
    messages = [
        _without("Call-ID", call_ids[0], port),
        _without("Via", call_ids[1], port),
        _without("CSeq", call_ids[2], port),
        _without("From", call_ids[3], port, "INVITE"),
        _without("To", call_ids[4], port, "INVITE"),
        # CSeq method differs from the request method.
        _without("Nothing", call_ids[5], port).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"),
        # Content-Length far beyond any integer type, and far beyond the datagram.
        _without("Nothing", call_ids[6], port, "INVITE").replace(
            b"Content-Length: 0", b"Content-Length: 99999999999999999999999999999999999999"
        )
        + b"v=0\r\n",
        _without("Nothing", call_ids[7], port, "INVITE").replace(
            b"Content-Length: 0", b"Content-Length: 4294967296"
        ),
        # NUL bytes inside header values and in the request line.
        _without("Nothing", call_ids[8], port).replace(b"tag=x1", b"tag=x\x00\x001"),
        _without("Nothing", call_ids[9], port).replace(b"sip:1001@", b"sip:10\x0001@"),
        # A Via that is not a Via at all, and one with an IPv6 literal left open.
        _without("Nothing", call_ids[10], port).replace(
            f"SIP/2.0/UDP 127.0.0.1:{port}".encode(), b"HTTP/1.1 nonsense"
        ),
        _without("Nothing", call_ids[11], port).replace(f"127.0.0.1:{port}".encode(), b"[::1:5060"),
        # Keepalive double CRLF (RFC 5626) and lone line ends.
        b"\r\n\r\n",
        b"\n",
        # Control characters only, and a request line with nothing after it.
        bytes(range(1, 32)) * 4,
        b"INVITE\r\n\r\n",
        b"SIP/2.0\r\n\r\n",
    ]
    # The largest datagram UDP can carry: a valid start, then padding in a header.
    head = _without("Content-Length", _call_id(), port)[:-2]
    messages.append(head + b"X-Pad: " + b"a" * (MAX_UDP_PAYLOAD - len(head) - 13) + b"\r\n\r\n")
    messages.append(os.urandom(MAX_UDP_PAYLOAD))
    return messages


async def test_broken_and_oversized_messages_then_a_burst(
    sip_stack: SipStack, attacker: Attacker, sipp_peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip")
    for datagram in broken_messages(attacker.port):
        assert len(datagram) <= MAX_UDP_PAYLOAD
        attacker.send(datagram)
    # A burst: the socket buffer overflows and the kernel drops some; nothing may wedge.
    for _ in range(2000):
        try:
            attacker.send(os.urandom(200 + int.from_bytes(os.urandom(1), "big") * 4))
        except BlockingIOError:
            await asyncio.sleep(0.001)

    await _options_answered(attacker)
    _assert_sippy_thread_alive()
    # Bad input is logged as dropped input (INFO, short), never as a bug (ERROR) in sippy.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(len(r.getMessage()) < 400 for r in caplog.records)
    await _normal_leg_completes(sip_stack, sipp_peer("answer.xml"))


# -- garbage aimed at a live dialog ------------------------------------------------------------


def _tag(header: str | None) -> str:
    match = re.search(r";\s*tag=([^;>\s]+)", header or "")
    assert match, header
    return match.group(1)


async def test_garbage_inside_a_live_dialog_neither_ends_it_nor_makes_up_a_digit(
    sip_stack: SipStack, attacker: Attacker, sipp_peer
) -> None:
    phone = sipp_peer("answer.xml")
    events: list[object] = []
    leg: Leg = await sip_stack.dial(
        phone.uri("1001"),
        caller=CALLER,
        sdp=OFFER_SDP,
        ring_timeout=5,
        on_event=lambda _leg, event: events.append(event),
    )
    while not isinstance(await leg.next_event(5), Answered):
        pass
    phone.wait_for_request("ACK")
    invite = phone.received("INVITE")[0]
    ok = next(m for m in phone.sent() if m.status == 200)
    our_tag, their_tag = _tag(invite.header("From")), _tag(ok.header("To"))
    call_id = leg.call_id
    cseq = 1000

    def in_dialog(
        method: str, body: bytes = b"", ctype: str = "", *, to_tag: str = their_tag
    ) -> bytes:
        nonlocal cseq
        cseq += 1
        head = (
            f"{method} sip:0290375678@127.0.0.1 SIP/2.0\r\n{attacker.via()}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag={to_tag}\r\n"
            f"To: <sip:0290375678@127.0.0.1>;tag={our_tag}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            + (f"Content-Type: {ctype}\r\n" if ctype else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    forged = [
        # Right Call-ID, wrong remote tag: not this dialog.
        in_dialog("BYE", to_tag="not-the-phone"),
        # DTMF INFO bodies that name no key.
        in_dialog("INFO", b"Signal=Z\r\nDuration=160\r\n", "application/dtmf-relay"),
        in_dialog("INFO", b"\x00\xff\xfe" * 30, "application/dtmf"),
        in_dialog("INFO", b"Signal=\r\n", "application/dtmf-relay"),
        # Truncated in-dialog requests and a stray response for the INVITE's Call-ID.
        in_dialog("BYE")[:90],
        in_dialog("INFO", b"Signal=1\r\n", "application/dtmf-relay")[:-20],
        # A 200 OK "for" our INVITE that matches no transaction of ours.
        b"SIP/2.0 200 OK\r\n" + in_dialog("INVITE").split(b"\r\n", 1)[1],
        os.urandom(300),
    ]
    for datagram in forged:
        attacker.send(datagram)
    # The forged BYE with a wrong tag is refused with 481; the call stays up.
    assert _status(await attacker.reply_for(call_id)) == 481
    await _options_answered(attacker)  # everything before it has been processed

    assert leg.state is LegState.ANSWERED
    assert not [e for e in events if isinstance(e, Digit)]
    assert phone.process.poll() is None  # the phone got no BYE: it still waits for ours
    await leg.hangup()
    assert phone.wait() == 0, phone.diagnostics()
    assert len(phone.received("BYE")) == 1
    _assert_sippy_thread_alive()


# -- the whole engine, right after the garbage -------------------------------------------------


async def test_the_engine_completes_a_callback_right_after_garbage(
    sipp_peer, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    """Issue 3's wording: garbage on the engine's SIP port, then a normal flow completes."""
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    settings = Settings(
        data_dir=tmp_path,
        demo_data=False,
        sip=SipSettings(
            listen_host="127.0.0.1",
            listen_port=free_port(),
            owner_uri_template=f"sip:{{internal}}@127.0.0.1:{owner.port}",
        ),
        trunk=TrunkSettings(uri_template=f"sip:{{e164}}@127.0.0.1:{trunk.port}"),
        rtpengine=rtpengine_settings.model_copy(update={"mode": "spawn"}),
    )
    facts = RequestFacts(
        request_ref="req-after-garbage",
        visitor_e164="+61290375678",
        owner_internal_number="1001",
        owner_external_e164="+61299990000",
        acceptance=AcceptanceMode.CONFIRM,
        caller_name="Mary Jones",
    )
    limits = FlowLimits(owner_ring_s=5, visitor_ring_s=5, digit_wait_s=5, max_call_duration_s=2)
    recorder = FakeRecorder()
    telephony = await LiveTelephony.start(settings, prompt_cache_dir=tmp_path / "prompts")
    engine = CallbackEngine(telephony, recorder, limits=limits)
    attacker = Attacker(telephony.sip_address)
    try:
        for _name, _cid, datagram, _expected in valid_torture(attacker):
            attacker.send(datagram)
        for datagram in broken_messages(attacker.port):
            attacker.send(datagram)
        await _options_answered(attacker)

        handle = await engine.start_callback(facts)
        async with asyncio.timeout(30):
            outcome = await handle.outcome
    finally:
        attacker.close()
        await engine.shutdown("test_over")
        await telephony.stop()

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await asyncio.to_thread(owner.wait) == 0, owner.diagnostics()
    assert await asyncio.to_thread(trunk.wait) == 0, trunk.diagnostics()
    for role in LegRole:
        assert recorder.record_of(role).disposition is Disposition.ANSWERED
    _assert_sippy_thread_alive()
