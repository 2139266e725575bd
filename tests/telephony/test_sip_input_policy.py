"""Malformed requests are answered 400 (or dropped) in one log line, and never stall the stack.

Issue 17 #4 / issue 16 #9: an INVITE whose To has an unterminated quote (RFC 4475 "quotbal")
made the request handler raise; nothing was answered and each datagram cost a traceback on the
SIP thread, so at ten a second the OPTIONS a proxy sends went unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator

import pytest
from sippy.SipRequest import SipRequest

from callnow.telephony.sip import SipStack
from callnow.telephony.sip.input_log import RateLimitedLog
from callnow.telephony.sip.input_policy import MalformedHeader, find_malformed_header


def _request(
    method: str = "INVITE",
    *,
    port: int = 5999,
    call_id: str = "",
    to: str = "<sip:1001@127.0.0.1>",
    contact: str = "<sip:caller@127.0.0.1>",
) -> str:
    call_id = call_id or f"input-{os.urandom(6).hex()}"
    return (
        f"{method} sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{os.urandom(5).hex()}\r\n"
        f"To: {to}\r\n"
        "From: sip:caller@127.0.0.1;tag=93334\r\n"
        "Max-Forwards: 10\r\n"
        f"Call-ID: {call_id}\r\n"
        f"Contact: {contact}\r\n"
        f"CSeq: 8 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )


def quotbal(port: int = 5999, call_id: str = "", method: str = "INVITE") -> str:
    """RFC 4475 3.1.2.7: the display name's closing quote is missing."""
    return _request(method, port=port, call_id=call_id, to='"Mr. J. User <sip:1001@127.0.0.1>')


# -- the policy, on parsed messages --------------------------------------------------------------


def test_quotbal_is_refused_for_its_to_header() -> None:
    assert find_malformed_header(SipRequest(quotbal())) == MalformedHeader(
        "To",
        "UnboundLocalError: cannot access local variable 'i' where it is not associated "
        "with a value",
    )
    assert MalformedHeader("To", "").reason == "Bad To Header"


@pytest.mark.parametrize(
    ("overrides", "header"),
    [
        ({"contact": '"unterminated <sip:x@127.0.0.1>'}, "Contact"),
        ({"to": "<sip:1001@127.0.0.1:notaport>"}, "To"),
    ],
)
def test_other_unreadable_headers_are_named(overrides: dict[str, str], header: str) -> None:
    problem = find_malformed_header(SipRequest(_request(**overrides)))

    assert problem is not None and problem.header == header


@pytest.mark.parametrize(
    "request_text",
    [
        _request(),
        _request(contact="*"),
        _request("OPTIONS", to='"Doe, Jane" <sip:1001@127.0.0.1>;tag=x'),
        _request(to="sip:%75se%72@127.0.0.1"),  # RFC 4475 esc01: odd but valid
    ],
)
def test_well_formed_requests_pass(request_text: str) -> None:
    assert find_malformed_header(SipRequest(request_text)) is None


# -- the rate-limited log ------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_per_interval_then_a_count_of_those_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    limited = RateLimitedLog(logging.getLogger("test.ratelimited"), interval_s=10, clock=clock)
    caplog.set_level(logging.INFO, logger="test.ratelimited")

    written = [limited.log(logging.INFO, "bad To", "bad To from %s", n) for n in range(5)]
    written.append(limited.log(logging.INFO, "bad Via", "bad Via"))
    clock.now += 9.9
    written.append(limited.log(logging.INFO, "bad To", "bad To from %s", 5))
    clock.now += 0.2
    written.append(limited.log(logging.INFO, "bad To", "bad To from %s", 6))

    assert written == [True, False, False, False, False, True, False, True]
    assert [r.getMessage() for r in caplog.records] == [
        "bad To from 0",
        "bad Via",
        "bad To from 6 (5 more of this kind in the last 10 s not logged)",
    ]


def test_a_traceback_only_on_a_line_that_is_written(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("test.ratelimited"), interval_s=10, clock=_Clock())
    caplog.set_level(logging.INFO, logger="test.ratelimited")

    for _ in range(3):
        try:
            raise ValueError("boom")
        except ValueError:
            limited.log(logging.ERROR, "boom", "it failed", exc_info=True)
    limited.reset()
    limited.log(logging.INFO, "boom", "again")

    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("it failed", True),
        ("again", False),
    ]


# -- the stack, over a real UDP socket -----------------------------------------------------------


class Peer:
    """A UDP socket of the test, collecting every datagram the stack sends it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.replies: list[tuple[float, bytes]] = []  # (loop time received, datagram)
        self._reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65535)
            self.replies.append((loop.time(), data))

    def send(self, datagram: str | bytes) -> None:
        self.sock.sendto(datagram.encode() if isinstance(datagram, str) else datagram, self.target)

    def replies_for(self, call_id: str) -> list[tuple[float, bytes]]:
        needle = f"\r\nCall-ID: {call_id}\r\n".encode()
        return [(at, data) for at, data in self.replies if needle in data]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self.sock.close()


@pytest.fixture
async def peers(sip_stack: SipStack) -> AsyncIterator[tuple[Peer, Peer]]:
    """(attacker, prober): two sockets, so the prober's answers are easy to tell apart."""
    pair = (Peer(sip_stack.address), Peer(sip_stack.address))
    for peer in pair:
        peer.start_reading()
    yield pair
    for peer in pair:
        await peer.close()


def _status_line(reply: bytes) -> bytes:
    return reply.split(b"\r\n", 1)[0]


def _server_transactions(stack: SipStack) -> dict[object, object]:
    return stack._config["_sip_tm"].tserver  # type: ignore[index]


async def _settle(peer: Peer, count: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(peer.replies) < count:
            await asyncio.sleep(0.01)


async def test_quotbal_gets_a_400_naming_to_and_leaves_no_transaction(
    sip_stack: SipStack, peers: tuple[Peer, Peer]
) -> None:
    attacker, _ = peers
    datagram = quotbal(attacker.port, call_id="quotbal.one")

    attacker.send(datagram)
    await _settle(attacker, 1)
    attacker.send(datagram)  # from an untrusted source, a retransmission gets nothing more
    await asyncio.sleep(0.3)

    ((_, first),) = attacker.replies_for("quotbal.one")
    assert _status_line(first) == b"SIP/2.0 400 Bad To Header"
    assert b'\r\nTo: "Mr. J. User <sip:1001@127.0.0.1>\r\n' in first  # echoed as received
    assert not _server_transactions(sip_stack)


async def test_a_malformed_ack_is_not_answered(
    sip_stack: SipStack, peers: tuple[Peer, Peer]
) -> None:
    attacker, _ = peers
    attacker.send(quotbal(attacker.port, call_id="quotbal.ack", method="ACK"))
    attacker.send(quotbal(attacker.port, call_id="quotbal.bye", method="BYE"))

    await _settle(attacker, 1)  # the BYE's 400 comes after anything for the ACK
    await asyncio.sleep(0.2)
    assert [_status_line(r) for _, r in attacker.replies] == [b"SIP/2.0 400 Bad To Header"]
    assert attacker.replies_for("quotbal.bye")
    assert not _server_transactions(sip_stack)


FLOOD_SECONDS = 5
MALFORMED_PER_SECOND = 10
OPTIONS_EVERY_S = 0.25
ANSWER_WITHIN_S = 0.5


async def test_a_flood_of_malformed_requests_does_not_delay_options(
    sip_stack: SipStack, peers: tuple[Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="callnow.telephony.sip")
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip.wire")
    attacker, prober = peers
    loop = asyncio.get_running_loop()

    async def flood() -> list[str]:
        quotbal_ids = []
        for n in range(FLOOD_SECONDS * MALFORMED_PER_SECOND):
            if n % 2 == 0:
                call_id = f"quotbal.{n}"
                attacker.send(quotbal(attacker.port, call_id=call_id))
                quotbal_ids.append(call_id)
            elif n % 4 == 1:
                attacker.send(os.urandom(300))
            else:  # a request line and nothing a response could be routed by
                attacker.send(b'INVITE sip:1001@127.0.0.1 SIP/2.0\r\nTo: "\r\n\r\n' + b"x" * 40)
            await asyncio.sleep(1 / MALFORMED_PER_SECOND)
        return quotbal_ids

    async def probe() -> dict[str, float]:
        sent_at = {}
        deadline = loop.time() + FLOOD_SECONDS
        while loop.time() < deadline:
            call_id = f"probe-{os.urandom(6).hex()}"
            sent_at[call_id] = loop.time()
            prober.send(
                f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{prober.port};branch=z9hG4bK-{call_id}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\n"
                f"To: <sip:1001@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            await asyncio.sleep(OPTIONS_EVERY_S)
        return sent_at

    quotbal_ids, options_sent_at = await asyncio.gather(flood(), probe())
    await asyncio.sleep(ANSWER_WITHIN_S)

    late = {}
    for call_id, sent_at in options_sent_at.items():
        answers = prober.replies_for(call_id)
        assert [_status_line(r) for _, r in answers] == [b"SIP/2.0 200 OK"], call_id
        if answers[0][0] - sent_at > ANSWER_WITHIN_S:
            late[call_id] = answers[0][0] - sent_at
    assert not late, f"OPTIONS answered later than {ANSWER_WITHIN_S} s: {late}"

    for call_id in quotbal_ids:
        assert [_status_line(r) for _, r in attacker.replies_for(call_id)] == [
            b"SIP/2.0 400 Bad To Header"
        ], call_id
    assert len(attacker.replies) == len(quotbal_ids)  # nothing for the garbage
    assert not _server_transactions(sip_stack)

    # One short line per kind of problem, no traceback, nothing at ERROR.
    input_records = [r for r in caplog.records if r.name != "callnow.telephony.sip.stack"]
    assert not [r for r in input_records if r.exc_info or r.levelno >= logging.ERROR]
    assert 1 <= len(input_records) <= 4, [r.getMessage() for r in input_records]
    assert all("\n" not in r.getMessage() for r in input_records)


# -- trusted sources -----------------------------------------------------------------------------


def _options(port: int, call_id: str) -> str:
    return (
        f"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{os.urandom(5).hex()}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\n"
        f"To: <sip:1001@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )


def test_trusted_sources_come_from_the_sip_settings() -> None:
    from callnow.config import SipSettings

    assert SipStack.from_settings(SipSettings()).trusted_sources == ()
    stack = SipStack.from_settings(SipSettings(trusted_sources=["10.1.2.3", "192.0.2.0/24"]))
    assert [str(net) for net in stack.trusted_sources or ()] == ["10.1.2.3/32", "192.0.2.0/24"]
    with pytest.raises(ValueError, match="not an IP address"):
        SipSettings(trusted_sources=["pbx.example.com"])


@pytest.mark.peers
async def test_untrusted_sources_get_nothing_outside_our_calls_but_reach_a_call(
    sipp_peer, caplog: pytest.LogCaptureFixture
) -> None:
    from callnow.telephony.sip import Answered, CallerId, Ended
    from tests.peers.sipp import OFFER_SDP

    caplog.set_level(logging.INFO, logger="callnow.telephony.sip.input")
    phone = sipp_peer("answer.xml")
    # Only a network no test socket is on is trusted: 127.0.0.1 is untrusted here.
    async with SipStack(
        "127.0.0.1", 0, trusted_sources=["192.0.2.0/24"], untrusted_requests="drop"
    ) as stack:
        stranger = Peer(stack.address)
        stranger.start_reading()
        try:
            leg = await stack.dial(
                phone.uri("1001"),
                caller=CallerId("Mary", "0290375678"),
                sdp=OFFER_SDP,
                ring_timeout=5,
            )
            while not isinstance(await leg.next_event(5), Answered):
                pass
            stranger.send(_options(stranger.port, "unsolicited-options"))
            stranger.send(quotbal(stranger.port, call_id="unsolicited-quotbal"))
            # Inside our call (its Call-ID), from the same untrusted address: handled. A
            # request to a dialog of ours with a To we cannot read is still refused with 400.
            stranger.send(quotbal(stranger.port, call_id=leg.call_id, method="BYE"))
            await _settle(stranger, 1)
            await asyncio.sleep(0.2)

            assert [_status_line(r) for _, r in stranger.replies] == [b"SIP/2.0 400 Bad To Header"]
            assert stranger.replies_for(leg.call_id)
            await leg.hangup()
            assert isinstance(await leg.next_event(5), Ended)
            assert phone.wait() == 0, phone.diagnostics()
        finally:
            await stranger.close()
    dropped = [r.getMessage() for r in caplog.records if "untrusted" in r.getMessage()]
    assert len(dropped) == 1 and "OPTIONS" in dropped[0]  # one line for the two, rate-limited


@pytest.mark.parametrize(
    ("broken", "replacement", "answer"),
    [
        (
            "From: sip:caller@127.0.0.1;tag=93334",
            'From: "Mr. J. User <sip:caller@127.0.0.1>',
            b"SIP/2.0 400 Bad From Header",
        ),
        ("CSeq: 8 INVITE", "CSeq: eight INVITE", b"SIP/2.0 400 Bad CSeq Header"),
        # The top Via names no one to answer: silence.
        ("Via: SIP/2.0/UDP 127.0.0.1:", "Via: SIP  /   2.0 /UDP 127.0.0.1:", None),
    ],
)
async def test_headers_sippy_reads_to_find_a_transaction_get_a_400_too(
    sip_stack: SipStack,
    peers: tuple[Peer, Peer],
    caplog: pytest.LogCaptureFixture,
    broken: str,
    replacement: str,
    answer: bytes | None,
) -> None:
    """From, Call-ID, CSeq and Via are read by sippy before our policy runs (patch 7 turns
    their parse errors into a 400): an answer, one INFO line, no traceback."""
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip")
    attacker, prober = peers
    datagram = _request(port=attacker.port, call_id="broken.one")
    assert broken in datagram

    attacker.send(datagram.replace(broken, replacement))
    prober.send(_options(prober.port, "after-broken"))
    await _settle(prober, 1)
    await asyncio.sleep(0.1)

    assert prober.replies_for("after-broken")
    assert [_status_line(r) for _, r in attacker.replies] == ([answer] if answer else [])
    assert not _server_transactions(sip_stack)
    dropped = [r for r in caplog.records if r.name == "callnow.telephony.sip.sippy"]
    assert len(dropped) == 1 and "can't parse SIP request" in dropped[0].getMessage()
    assert dropped[0].levelno == logging.INFO and dropped[0].exc_info is None


async def test_a_bug_in_request_handling_is_logged_once_and_never_reaches_sippy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[str] = []

    def broken_handler(self: SipStack, req: object, _transaction: object) -> None:
        handled.append(str(req.getHFBody("call-id")))  # type: ignore[attr-defined]
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(SipStack, "_on_request", broken_handler)
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip")
    # Trusted: only a trusted source's request reaches the handler through a transaction.
    async with SipStack("127.0.0.1", 0, trusted_sources=["127.0.0.1"]) as stack:
        prober = Peer(stack.address)
        try:
            for n in range(3):
                prober.send(_options(prober.port, f"bug-{n}"))
            async with asyncio.timeout(5):
                while len(handled) < 3:
                    await asyncio.sleep(0.01)
        finally:
            await prober.close()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "handling a OPTIONS request failed: RuntimeError: a bug of ours"
    ]
    assert errors[0].exc_info is not None  # a bug keeps its traceback, once per interval
    assert not [r for r in caplog.records if "sippy swallowed" in r.getMessage()]
