"""A tiny RTP phone for tests: one UDP socket on 127.0.0.1 that sends and records RTP.

    async with RtpPeer() as phone:
        offer = phone.sdp()                         # PCMU/PCMA/telephone-event at its port
        await phone.send_audio(("127.0.0.1", port), packets=25)    # 20 ms pacing
        await phone.send_digit(("127.0.0.1", port), "1")            # RFC 4733, paced
        await phone.wait_for_packets(10)

Audio and events share one SSRC and sequence space, as from a real phone. Sending follows an
absolute 20 ms schedule and RFC 4733 timing (one event timestamp, growing durations, three end
packets), because rtpengine ignores what a real phone would not send, such as a burst of end
packets with timestamp 0.
"""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

PCMU = 0
PCMA = 8
TELEPHONE_EVENT = 101
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PACKET_INTERVAL_S = 0.020
_DIGIT_EVENTS = {d: i for i, d in enumerate("0123456789*#ABCD")}

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    source: Address
    received_at: float

    @classmethod
    def parse(cls, data: bytes, source: Address, received_at: float) -> RtpPacket | None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return None  # not RTP version 2
        first, second, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        if 200 <= second <= 204:
            return None  # RTCP (when muxed) shares the version bits; keep it out of RTP counts
        header = 12 + 4 * (first & 0x0F)  # CSRC list
        if first & 0x10 and len(data) >= header + 4:  # header extension: 4 bytes + length words
            header += 4 + 4 * struct.unpack("!H", data[header + 2 : header + 4])[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)  # padding
        return cls(
            second & 0x7F, bool(second & 0x80), seq, ts, ssrc, data[header:end], source, received_at
        )


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """RFC 4733 payload: event, end bit, volume, duration (in timestamp units)."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        event, flags, duration = struct.unpack("!BBH", payload[:4])
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)


@dataclass
class _Stream:
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    sequence: int = field(default_factory=lambda: random.getrandbits(16))
    timestamp: int = field(default_factory=lambda: random.getrandbits(32))

    def header(self, payload_type: int, marker: bool, timestamp: int | None = None) -> bytes:
        ts = self.timestamp if timestamp is None else timestamp
        self.sequence = (self.sequence + 1) & 0xFFFF
        return struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | payload_type,
            self.sequence,
            ts & 0xFFFFFFFF,
            self.ssrc,
        )


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, peer: RtpPeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        packet = RtpPacket.parse(data, (addr[0], addr[1]), asyncio.get_running_loop().time())
        if packet is not None:
            self.peer.received.append(packet)
            self.peer._arrived.set()


class RtpPeer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.received: list[RtpPacket] = []
        self._arrived = asyncio.Event()
        self._stream = _Stream()
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    async def start(self) -> RtpPeer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, 0)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> RtpPeer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def sdp(self, session_id: int | None = None) -> str:
        sid = session_id if session_id is not None else random.getrandbits(31)
        return (
            "v=0\r\n"
            f"o=phone {sid} 1 IN IP4 {self.host}\r\n"
            "s=phone\r\n"
            f"c=IN IP4 {self.host}\r\n"
            "t=0 0\r\n"
            f"m=audio {self.port} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-16\r\n"
            "a=ptime:20\r\n"
            "a=sendrecv\r\n"
        )

    # -- sending ---------------------------------------------------------------------------

    def _send(self, packet: bytes, dest: Address) -> None:
        assert self._transport is not None, "start() the peer first"
        self._transport.sendto(packet, dest)

    async def _paced(self, count: int) -> Any:
        """Yield `count` times on an absolute 20 ms schedule (no drift from slow iterations)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            delay = start + i * PACKET_INTERVAL_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield i

    async def send_audio(
        self, dest: Address, packets: int, payload_type: int = PCMU, fill: int = 0xFF
    ) -> None:
        """Send `packets` 20 ms frames (PCMU 0xFF is silence; any byte is valid G.711)."""
        payload = bytes([fill]) * SAMPLES_PER_PACKET
        async for i in self._paced(packets):
            self._send(self._stream.header(payload_type, marker=(i == 0)) + payload, dest)
            self._stream.timestamp += SAMPLES_PER_PACKET

    async def send_digit(
        self,
        dest: Address,
        digit: str,
        duration_ms: int = 200,
        volume: int = 10,
        payload_type: int = TELEPHONE_EVENT,
        end_repeats: int = 3,
    ) -> None:
        """One RFC 4733 event: a packet every 20 ms with growing duration, then 3 end packets.

        All packets of the event carry the event's start timestamp (RFC 4733 section 2.5.1.2),
        the first has the marker bit; afterwards the media clock moves past the event.
        """
        event = _DIGIT_EVENTS[digit.upper()]
        start_ts = self._stream.timestamp
        steps = max(1, duration_ms // 20)
        # (end bit, duration) per packet: growing updates, then the final one `end_repeats` times
        plan = [(False, (i + 1) * SAMPLES_PER_PACKET) for i in range(steps - 1)]
        plan += [(True, steps * SAMPLES_PER_PACKET)] * end_repeats
        async for i in self._paced(len(plan)):
            end, duration = plan[i]
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)
            header = self._stream.header(payload_type, marker=(i == 0), timestamp=start_ts)
            self._send(header + payload, dest)
        self._stream.timestamp += steps * SAMPLES_PER_PACKET

    async def send_digits(self, dest: Address, digits: str, gap_packets: int = 5) -> None:
        """Digits separated by a little audio, as a phone would send them."""
        for digit in digits:
            await self.send_digit(dest, digit)
            await self.send_audio(dest, gap_packets)

    # -- receiving -------------------------------------------------------------------------

    def clear(self) -> None:
        self.received.clear()

    def audio_packets(self, payload_type: int | None = None) -> list[RtpPacket]:
        return [
            p
            for p in self.received
            if p.payload_type != TELEPHONE_EVENT
            and (payload_type is None or p.payload_type == payload_type)
        ]

    def telephone_events(self, payload_type: int = TELEPHONE_EVENT) -> list[TelephoneEvent]:
        return [
            TelephoneEvent.parse(p.payload)
            for p in self.received
            if p.payload_type == payload_type and len(p.payload) >= 4
        ]

    def digits(self, payload_type: int = TELEPHONE_EVENT) -> str:
        """Keys received as RFC 4733 events, one per event (start timestamp), in order."""
        keys = "0123456789*#ABCD"
        seen: dict[tuple[int, int], int] = {}
        for p in self.received:
            if p.payload_type == payload_type and len(p.payload) >= 4:
                seen.setdefault((p.ssrc, p.timestamp), p.payload[0])
        return "".join(keys[e] if e < len(keys) else "?" for e in seen.values())

    async def wait_for_packets(self, count: int, timeout_s: float = 5.0) -> list[RtpPacket]:
        """Wait until at least `count` packets arrived; return them (may be fewer on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.received) < count and loop.time() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                break
        return list(self.received)

    async def wait_until_quiet(
        self, quiet_s: float = 0.5, timeout_s: float = 10.0, first_packet_s: float = 3.0
    ) -> list[RtpPacket]:
        """Wait for a stream to start and then stop (no packet for `quiet_s`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if not self.received:
            await self.wait_for_packets(1, timeout_s=first_packet_s)
        while self.received and loop.time() < deadline:
            since_last = loop.time() - self.received[-1].received_at
            if since_last >= quiet_s:
                break
            await asyncio.sleep(min(quiet_s - since_last, deadline - loop.time()) + 0.01)
        return list(self.received)
