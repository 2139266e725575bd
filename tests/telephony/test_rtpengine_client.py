"""The ng client's transport rules, against a scripted fake rtpengine on a UDP socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from callnow.telephony.bencode import bdecode, bencode
from callnow.telephony.rtpengine import (
    AnchoredCallback,
    RtpengineClient,
    RtpengineError,
    RtpengineProtocolError,
    RtpengineUnavailable,
)

Fake = Callable[..., Any]

# Given (cookie, request dict, how many times this cookie was seen): datagrams to send back.
Script = Callable[[bytes, dict[str, Any], int], list[bytes]]


class FakeRtpengine(asyncio.DatagramProtocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[bytes, dict[str, Any]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (3.11's selector transport does not subclass DatagramTransport, hence the cast)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        cookie, _, body = data.partition(b" ")
        request = bdecode(body)
        self.requests.append((cookie, request))
        seen = sum(1 for c, _ in self.requests if c == cookie)
        assert self.transport is not None
        for reply in self.script(cookie, request, seen):
            self.transport.sendto(reply, addr)


@pytest.fixture
async def fake() -> AsyncIterator[Callable[[Script], Any]]:
    """`server, client = await fake(script)`: both are closed after the test."""
    opened: list[tuple[asyncio.DatagramTransport, RtpengineClient]] = []

    async def start(script: Script) -> tuple[FakeRtpengine, RtpengineClient]:
        loop = asyncio.get_running_loop()
        transport, server = await loop.create_datagram_endpoint(
            lambda: FakeRtpengine(script), local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        client = RtpengineClient("127.0.0.1", port, timeout_s=0.6, retries=1)
        opened.append((transport, client))
        return server, client

    yield start
    for transport, client in opened:
        await client.close()
        transport.close()


def reply(cookie: bytes, body: dict[str, Any]) -> bytes:
    return cookie + b" " + bencode(body)


async def test_a_lost_request_is_sent_again_with_the_same_cookie(
    fake: Fake,
) -> None:
    # drop the first copy; rtpengine would answer a repeated cookie from its reply cache
    server, client = await fake(
        lambda cookie, req, seen: [] if seen == 1 else [reply(cookie, {"result": "pong"})]
    )
    await client.ping()
    cookies = [cookie for cookie, _ in server.requests]
    assert len(cookies) == 2 and cookies[0] == cookies[1]


async def test_replies_with_unknown_cookies_are_ignored(fake: Fake) -> None:
    _, client = await fake(
        lambda cookie, req, seen: [
            reply(b"stale", {"result": "error", "error-reason": "not for you"}),
            b"garbage-without-space",
            reply(cookie, {"result": "pong"}),
        ]
    )
    await client.ping()


async def test_the_request_carries_command_and_hyphenated_keys(
    fake: Fake,
) -> None:
    server, client = await fake(
        lambda cookie, req, seen: [reply(cookie, {"result": "ok", "duration": 2500})]
    )
    duration = await client.play_media("c1", "owner", file="/tmp/p.wav", repeat_times=2)
    assert duration == 2.5
    assert server.requests[0][1] == {
        "command": "play media",
        "call-id": "c1",
        "from-tag": "owner",
        "file": "/tmp/p.wav",
        "repeat-times": 2,
    }


async def test_error_result_raises_with_the_reason(fake: Fake) -> None:
    _, client = await fake(
        lambda cookie, req, seen: [
            reply(cookie, {"result": "error", "error-reason": "Unknown call-id"})
        ]
    )
    with pytest.raises(RtpengineError) as caught:
        await client.query("c1")
    assert (caught.value.command, caught.value.reason) == ("query", "Unknown call-id")


async def test_an_undecodable_reply_is_a_protocol_error(fake: Fake) -> None:
    _, client = await fake(lambda cookie, req, seen: [cookie + b" d6:result"])
    with pytest.raises(RtpengineProtocolError):
        await client.ping()


async def test_an_offer_reply_without_sdp_is_a_protocol_error(
    fake: Fake,
) -> None:
    _, client = await fake(lambda cookie, req, seen: [reply(cookie, {"result": "ok"})])
    with pytest.raises(RtpengineProtocolError, match="no SDP"):
        await client.offer("c1", "a", "v=0\r\n")


async def test_silence_is_unavailable_after_every_attempt(
    fake: Fake,
) -> None:
    server, client = await fake(lambda cookie, req, seen: [])
    with pytest.raises(RtpengineUnavailable, match=r"did not answer 'ping' within 0\.6s"):
        await client.ping()
    assert len(server.requests) == 2  # the first try and one retry


def sdp(origin: str, port: int) -> str:
    return (
        f"v=0\r\no={origin} IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nm=audio {port} RTP/AVP 0\r\n"
    )


async def test_if_the_owners_port_moves_the_re_invite_sdp_keeps_the_owners_session(
    fake: Fake,
) -> None:
    """rtpengine normally keeps the port (port latching); if not, the engine gets a valid SDP."""
    replies = iter(
        [
            sdp("callnow 111 1", 30000),  # offer: for the owner's INVITE
            sdp("phone 222 1", 30002),  # the owner's answer (kept by rtpengine only)
            sdp("phone 222 1", 30002),  # the owner's side offered on: the visitor's INVITE
            sdp("visitor 333 2", 30004),  # the visitor's answer: the owner's port moved
        ]
    )
    _, client = await fake(
        lambda cookie, req, seen: [reply(cookie, {"result": "ok", "sdp": next(replies)})]
    )
    media = AnchoredCallback(client, call_id="c1")
    await media.offer_for_owner()
    await media.owner_answered("v=0\r\n")
    assert "o=callnow " in media.sdp_for_visitor  # nothing of the owner phone's origin
    assert "phone 222" not in media.sdp_for_visitor
    reinvite = await media.visitor_answered("v=0\r\n")
    assert reinvite == sdp("callnow 111 2", 30004)


async def test_many_requests_at_once_each_get_their_own_reply(fake: Fake) -> None:
    # The replies arrive while the loop is busy sending: all are read, none is confused.
    server, client = await fake(
        lambda cookie, req, seen: [reply(cookie, {"result": "ok", "echo": req["call-id"]})]
    )
    replies = await asyncio.gather(*(client.query(f"c{i}") for i in range(200)))
    assert [r["echo"] for r in replies] == [f"c{i}" for i in range(200)]
    cookies = [cookie for cookie, _ in server.requests]
    assert len(set(cookies)) == 200
    # another client (another process, after a restart) does not reuse them
    _, other = await fake(lambda cookie, req, seen: [reply(cookie, {"result": "pong"})])
    await other.ping()
    assert other._cookie_prefix != client._cookie_prefix
