"""rtpengine's DTMF log: parsing its JSON datagrams, and digits from a real daemon."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid

import pytest

from callnow.config import RtpengineSettings
from callnow.telephony.dtmf_log import (
    MAX_DATAGRAM_BYTES,
    DtmfEvent,
    DtmfLogListener,
    MalformedDtmfEvent,
    parse_dtmf_event,
)
from callnow.telephony.rtpengine import RtpengineClient, placeholder_sdp
from tests.peers.rtp import RtpPeer
from tests.support.waiting import until

# Exactly what rtpengine 10.5 sent in a run of these tests.
RTPENGINE_10_5_DATAGRAM = (
    b'{"callid":"c1","source_tag":"owner","tags":["visitor","owner"],"type":"DTMF",'
    b'"timestamp":1795650345,"source_ip":"127.0.0.1","event":1,"duration":200,"volume":10}'
)


def test_parses_the_datagram_rtpengine_10_5_sends() -> None:
    event = parse_dtmf_event(RTPENGINE_10_5_DATAGRAM)
    assert event == DtmfEvent(
        call_id="c1",
        source_tag="owner",
        event=1,
        duration_ms=200,
        volume=10,
        source_ip="127.0.0.1",
        tags=("visitor", "owner"),
        timestamp=1795650345,
    )
    assert event.digit == "1"


def test_newer_versions_source_label_is_kept() -> None:
    data = json.loads(RTPENGINE_10_5_DATAGRAM)
    data["source_label"] = "caller"
    assert parse_dtmf_event(json.dumps(data).encode()).source_label == "caller"


@pytest.mark.parametrize(
    ("event", "digit"), [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (15, "D"), (16, None)]
)
def test_rfc4733_event_codes_map_to_keys(event: int, digit: str | None) -> None:
    data = json.loads(RTPENGINE_10_5_DATAGRAM)
    data["event"] = event
    assert parse_dtmf_event(json.dumps(data).encode()).digit == digit


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"source_tag":"owner","event":1}',  # no call-id
        b'{"callid":"c1","source_tag":"owner","event":"1"}',  # event as text
        b'{"callid":"c1","source_tag":"owner","event":true}',
        b'{"callid":"c1","source_tag":"owner","event":1,"type":"hangup"}',
        b'{"callid":"' + b"x" * MAX_DATAGRAM_BYTES + b'","source_tag":"o","event":1}',
    ],
)
def test_malformed_datagrams_are_rejected(datagram: bytes) -> None:
    with pytest.raises(MalformedDtmfEvent):
        parse_dtmf_event(datagram)


async def test_listener_survives_garbage_and_a_failing_handler() -> None:
    received: list[DtmfEvent] = []

    def handler(event: DtmfEvent) -> None:
        if event.call_id == "boom":
            raise RuntimeError("handler bug")
        received.append(event)

    async with DtmfLogListener("127.0.0.1", 0, handler) as listener:
        boom = RTPENGINE_10_5_DATAGRAM.replace(b'"c1"', b'"boom"')
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in (b"garbage", b"{}", boom, RTPENGINE_10_5_DATAGRAM):
                sender.sendto(datagram, ("127.0.0.1", listener.port))
        await until(lambda: received)  # in order: the garbage sent before it was read too

    assert [e.call_id for e in received] == ["c1"]
    assert listener.malformed == 2


def port_of(sdp: str) -> int:
    match = re.search(r"^m=audio (\d+) ", sdp, re.M)
    assert match, sdp
    return int(match.group(1))


@pytest.mark.peers
async def test_paced_rfc4733_digits_from_each_leg_reach_the_dtmf_log(
    rtpengine: tuple[RtpengineSettings, RtpengineClient],
) -> None:
    settings, client = rtpengine
    events: asyncio.Queue[DtmfEvent] = asyncio.Queue()
    call_id = f"test-{uuid.uuid4().hex}"
    async with (
        DtmfLogListener(settings.ng_host, settings.dtmf_log_port, events.put_nowait),
        RtpPeer() as owner,
        RtpPeer() as visitor,
    ):
        sdp_for_owner = await client.offer(call_id, "visitor", placeholder_sdp())
        sdp_for_visitor = await client.answer(call_id, "visitor", "owner", owner.sdp())
        await client.bridge(call_id, "visitor", visitor.sdp(), "owner", owner.sdp())
        to_engine_from_owner = ("127.0.0.1", port_of(sdp_for_owner))
        to_engine_from_visitor = ("127.0.0.1", port_of(sdp_for_visitor))

        # a phone sends some audio first, then the digits, each correctly paced
        await owner.send_audio(to_engine_from_owner, packets=5)
        await owner.send_digits(to_engine_from_owner, "1#")
        await visitor.send_audio(to_engine_from_visitor, packets=5)
        await visitor.send_digits(to_engine_from_visitor, "7")

        got = [await asyncio.wait_for(events.get(), timeout=3) for _ in range(3)]
        await owner.wait_until_quiet(quiet_s=0.3)
        await visitor.wait_until_quiet(quiet_s=0.3)

    assert [(e.call_id, e.source_tag, e.digit) for e in got] == [
        (call_id, "owner", "1"),
        (call_id, "owner", "#"),
        (call_id, "visitor", "7"),
    ]
    assert all(e.duration_ms == 200 for e in got)
    assert events.empty()  # one event per digit, not one per packet
    # bridged, the digits are also relayed to the other phone as RFC 4733 events
    assert visitor.digits() == "1#"
    assert owner.digits() == "7"
    await client.delete(call_id)
