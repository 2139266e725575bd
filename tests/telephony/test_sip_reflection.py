"""No reflection from the SIP port: a request outside our calls from an address that is not a
configured peer gets at most one reply, never retransmitted, and a per-source rate caps even
that. Over real UDP sockets against the running stack."""

from __future__ import annotations

import asyncio
import os

import pytest

from callnow.config import SipSettings
from callnow.telephony.sip import SipStack
from callnow.telephony.sip.source_limit import SourceRateLimit
from tests.support.ports import free_port
from tests.telephony.test_sip_input_policy import Peer, _status_line

# RFC 3261 timer G doubles from 0.5 s: a 403 retransmitted until acknowledged would repeat at
# 0.5, 1.5 and 3.5 s. Waiting 4 s sees three of the seven copies the old stack sent.
WATCH_S = 4.0


def _invite(port: int, call_id: str) -> str:
    body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    return (
        "INVITE sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{os.urandom(5).hex()}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:scanner@127.0.0.1>;tag=s1\r\n"
        f"To: <sip:1001@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:scanner@127.0.0.1>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )


async def _watch(stack: SipStack, send) -> Peer:
    stranger = Peer(stack.address)
    stranger.start_reading()
    try:
        send(stranger)
        await asyncio.sleep(WATCH_S)
    finally:
        await stranger.close()
    return stranger


async def test_an_unsolicited_invite_from_an_unknown_source_gets_at_most_one_reply() -> None:
    # As configured by default: no trusted sources, one reply, a rate per source.
    async with SipStack.from_settings(SipSettings(listen_port=free_port())) as stack:

        def send(peer: Peer) -> None:
            peer.send(_invite(peer.port, "scan-1"))

        stranger = await _watch(stack, send)
        replies = [_status_line(r) for _, r in stranger.replies]
        assert replies == [b"SIP/2.0 403 Incoming calls not accepted"]
        assert not stack._config["_sip_tm"].tserver  # type: ignore[index]  # no transaction


async def test_a_repeated_invite_gets_nothing_more() -> None:
    async with SipStack("127.0.0.1", 0) as stack:

        def send(peer: Peer) -> None:
            invite = _invite(peer.port, "scan-2")
            for _ in range(5):  # the scanner's own retransmissions
                peer.send(invite)

        stranger = await _watch(stack, send)
        assert len(stranger.replies) == 1


async def test_dropping_sends_nothing_at_all() -> None:
    async with SipStack("127.0.0.1", 0, untrusted_requests="drop") as stack:
        stranger = await _watch(stack, lambda peer: peer.send(_invite(peer.port, "scan-3")))
        assert stranger.replies == []


async def test_a_trusted_peer_still_gets_a_transaction() -> None:
    async with SipStack("127.0.0.1", 0, trusted_sources=["127.0.0.1"]) as stack:
        stranger = await _watch(stack, lambda peer: peer.send(_invite(peer.port, "pbx-1")))
        # A PBX is owed RFC 3261's reliability: the 403 repeats until it is acknowledged.
        lines = {_status_line(r) for _, r in stranger.replies}
        assert lines == {b"SIP/2.0 403 Incoming calls not accepted"}
        assert len(stranger.replies) >= 2


async def test_one_source_gets_no_more_replies_than_its_rate_allows() -> None:
    async with SipStack("127.0.0.1", 0, source_rate_per_s=1, source_burst=5) as stack:

        def send(peer: Peer) -> None:
            for n in range(50):
                peer.send(_invite(peer.port, f"flood-{n}"))

        stranger = await _watch(stack, send)
        # The burst, plus at most one a second while we watched.
        assert 5 <= len(stranger.replies) <= 5 + int(WATCH_S) + 1


def test_the_rate_refills_and_the_table_of_sources_stays_bounded() -> None:
    limit = SourceRateLimit(per_second=2, burst=2, max_sources=3)
    assert [limit.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limit.allow("a", 0.5)  # half a second: one more
    for n, source in enumerate("bcdefg"):
        limit.allow(source, 10.0 + n)
    assert len(limit) <= 3


def test_the_reflection_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="untrusted_requests"):
        SipSettings(untrusted_requests="answer_always")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source_rate_per_s"):
        SipSettings(source_rate_per_s=-1)
    assert SipSettings().untrusted_requests == "answer_once"
