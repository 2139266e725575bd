"""Hostile and broken input on our SIP port must neither crash nor stall the stack.

Garbage goes to the stack's UDP port from a socket of the test; every Via names that socket,
so the stack's answers never reach anyone else's port. After the flood, an OPTIONS must be
answered and a normal call must complete.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest

from callnow.telephony.sip import Answered, CallerId, Ended, SipStack
from callnow.telephony.sip.reactor import reactor
from tests.peers.sipp import OFFER_SDP

pytestmark = pytest.mark.peers


def _request(start_line: str, port: int, *headers: str, body: str = "", length: str = "") -> str:
    base = [
        start_line,
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{os.urandom(4).hex()}",
        "Max-Forwards: 70",
        "From: <sip:attacker@127.0.0.1>;tag=a1",
        "To: <sip:1001@127.0.0.1>",
        f"Call-ID: {os.urandom(8).hex()}@127.0.0.1",
        f"CSeq: 1 {start_line.split(' ', 1)[0] or 'INVITE'}",
    ]
    lines = base + list(headers)
    lines.append(f"Content-Length: {length or len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def torture_messages(port: int) -> list[bytes]:
    """Random bytes, truncations and RFC 4475-style malformed messages."""
    invite = _request("INVITE sip:1001@127.0.0.1 SIP/2.0", port, body="v=0\r\n")
    messages = [
        os.urandom(16),  # shorter than any SIP message
        os.urandom(600),
        os.urandom(8000),
        b"\x00" * 200,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + b"x" * 40,
        invite.encode()[: len(invite) // 2],  # truncated in the headers
        invite.encode()[:60],
        invite.encode().replace(b"CSeq", b"\xff\xfeCSeq"),  # invalid UTF-8
        # Negative and oversized Content-Length (RFC 4475 ncl, clerr).
        _request("INVITE sip:1001@127.0.0.1 SIP/2.0", port, body="v=0\r\n", length="-999").encode(),
        _request("INVITE sip:1001@127.0.0.1 SIP/2.0", port, body="v=0\r\n", length="9999").encode(),
        # Huge numbers (scalar02), unknown SIP version (badvers), URI in brackets (ltgtruri).
        _request(
            "INVITE sip:1001@127.0.0.1 SIP/2.0",
            port,
            "Max-Forwards: 300",
            "CSeq: 36893488147419103232 INVITE",
        ).encode(),
        _request("INVITE sip:1001@127.0.0.1 SIP/7.0", port).encode(),
        _request("INVITE <sip:1001@127.0.0.1> SIP/2.0", port).encode(),
        # Escaped NUL in the user part, unbalanced quotes in a display name.
        _request(
            "INVITE sip:10%00@127.0.0.1 SIP/2.0", port, 'Contact: "caller <sip:caller@127.0.0.1>'
        ).encode(),
        # A Via with a bogus port and a host that does not resolve.
        _request("OPTIONS sip:1001@127.0.0.1 SIP/2.0", port)
        .replace(f"127.0.0.1:{port}", "127.0.0.1:notaport", 1)
        .encode(),
        _request("OPTIONS sip:1001@127.0.0.1 SIP/2.0", port)
        .replace(f"UDP 127.0.0.1:{port}", f"UDP host.invalid:{port}", 1)
        .encode(),
        # Responses for transactions that never existed, one with a silly status code.
        b"SIP/2.0 200 OK\r\n" + _request("", port).split("\r\n", 1)[1].encode(),
        b"SIP/2.0 99999 Weird\r\n" + _request("", port).split("\r\n", 1)[1].encode(),
        # In-dialog requests for dialogs that do not exist.
        _request("BYE sip:1001@127.0.0.1 SIP/2.0", port, "To: <sip:1001@127.0.0.1>;tag=nosuch")
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
        .encode(),
        _request("CANCEL sip:1001@127.0.0.1 SIP/2.0", port).encode(),
        _request("ACK sip:1001@127.0.0.1 SIP/2.0", port).encode(),
        # A header flood close to the datagram limit.
        _request(
            "INVITE sip:1001@127.0.0.1 SIP/2.0",
            port,
            *[f"X-Flood-{i}: {'a' * 60}" for i in range(100)],
        ).encode(),
    ]
    return messages


async def test_garbage_neither_crashes_nor_stalls_the_stack(
    sip_stack: SipStack, sipp_peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callnow.telephony.sip")
    host, port = sip_stack.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))
        attacker.setblocking(False)
        my_port = attacker.getsockname()[1]
        for datagram in torture_messages(my_port):
            attacker.sendto(datagram, (host, port))

        # The stack still answers: an OPTIONS sent after the garbage gets its 200.
        options = _request("OPTIONS sip:1001@127.0.0.1 SIP/2.0", my_port)
        attacker.sendto(options.encode(), (host, port))
        loop = asyncio.get_running_loop()
        replies = []
        async with asyncio.timeout(5):
            while not any(r.startswith(b"SIP/2.0 200") and b"OPTIONS" in r for r in replies):
                replies.append(await loop.sock_recv(attacker, 65535))

    assert reactor.running
    # Every bad datagram was dropped as bad input; none hit a bug path (ERROR) in sippy.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(len(r.getMessage()) < 400 for r in caplog.records)
    # Incoming INVITEs are refused rather than answered; broken ones get 400 Bad Request.
    assert not any(r.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in r for r in replies)
    assert any(r.startswith(b"SIP/2.0 400") for r in replies)

    # And a normal call completes right after.
    peer = sipp_peer("answer.xml")
    leg = await sip_stack.dial(
        peer.uri("1001"), caller=CallerId("Mary", "0290375678"), sdp=OFFER_SDP, ring_timeout=2.0
    )
    event = await leg.next_event(5)
    while not isinstance(event, Answered):
        event = await leg.next_event(5)
    await leg.hangup()
    assert isinstance(await leg.next_event(5), Ended)
    assert peer.wait() == 0, peer.diagnostics()
