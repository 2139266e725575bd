"""The test phone itself: what it sends is what RFC 3550 / RFC 4733 receivers expect."""

from __future__ import annotations

import itertools

from tests.peers.rtp import PCMU, SAMPLES_PER_PACKET, TELEPHONE_EVENT, RtpPeer


async def test_a_digit_is_one_event_with_growing_duration_and_three_end_packets() -> None:
    async with RtpPeer() as phone, RtpPeer() as listener:
        await phone.send_audio(listener.address, packets=2)
        await phone.send_digit(listener.address, "#", duration_ms=100)
        await phone.send_audio(listener.address, packets=1)
        packets = await listener.wait_for_packets(2 + 4 + 3 + 1, timeout_s=3)

    audio_before, event, audio_after = packets[:2], packets[2:9], packets[9:]
    assert [p.payload_type for p in event] == [TELEPHONE_EVENT] * 7
    assert [p.marker for p in event] == [True] + [False] * 6
    assert {p.timestamp for p in event} == {audio_before[-1].timestamp + SAMPLES_PER_PACKET}
    events = listener.telephone_events()
    assert [(e.event, e.end, e.duration) for e in events] == [
        (11, False, 160),
        (11, False, 320),
        (11, False, 480),
        (11, False, 640),
        (11, True, 800),
        (11, True, 800),
        (11, True, 800),
    ]
    assert listener.digits() == "#"
    # one stream: one SSRC, consecutive sequence numbers, media clock moved past the event
    assert len({p.ssrc for p in packets}) == 1
    sequences = [p.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))
    assert audio_after[0].payload_type == PCMU
    assert audio_after[0].timestamp == event[0].timestamp + 5 * SAMPLES_PER_PACKET


async def test_audio_is_paced_on_the_media_clock() -> None:
    async with RtpPeer() as phone, RtpPeer() as listener:
        await phone.send_audio(listener.address, packets=10)
        packets = await listener.wait_for_packets(10, timeout_s=3)
    stamps = [p.timestamp for p in packets]
    assert [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)] == [160] * 9
    # paced, not a burst: ten 20 ms frames take at least 9 intervals to send
    assert packets[-1].received_at - packets[0].received_at >= 9 * 0.020 * 0.9
