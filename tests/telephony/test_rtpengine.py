"""The ng client against a real, private rtpengine (userspace, loopback).

Two `RtpPeer`s play the phones: plain UDP sockets that send and record RTP. All counts are
derived from what was sent or from the media duration, never from wall-clock speed.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from callnow.config import RtpengineSettings
from callnow.telephony.prompts import PromptRenderer
from callnow.telephony.rtpengine import (
    AnchoredCallback,
    RtpengineClient,
    RtpengineError,
    RtpengineUnavailable,
    placeholder_sdp,
)
from tests.peers.rtp import PACKET_INTERVAL_S, PCMU, RtpPeer
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

Engine = tuple[RtpengineSettings, RtpengineClient]
OWNER, VISITOR = "owner-tag", "visitor-tag"


def media_address(sdp: str) -> tuple[str, int]:
    """(c= address, first m=audio port) of an SDP body."""
    host = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
    port = re.search(r"^m=audio (\d+) ", sdp, re.M)
    assert host and port, sdp
    return host.group(1), int(port.group(1))


def new_call_id() -> str:
    return f"test-{uuid.uuid4().hex}"


async def test_ping_is_answered_with_pong(rtpengine: Engine) -> None:
    _, client = rtpengine
    await client.ping()  # raises unless the reply is `pong`


async def test_offer_and_answer_relay_audio_between_two_phones(rtpengine: Engine) -> None:
    settings, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as alice, RtpPeer() as bob:
        sdp_for_bob = await client.offer(call_id, "alice", alice.sdp())
        sdp_for_alice = await client.answer(call_id, "alice", "bob", bob.sdp())
        alice_sends_to = media_address(sdp_for_alice)
        bob_sends_to = media_address(sdp_for_bob)
        # rtpengine substituted its own ports, from the configured range, for each side
        for _, port in (alice_sends_to, bob_sends_to):
            assert settings.port_min <= port <= settings.port_max
        assert alice_sends_to != bob_sends_to

        await asyncio.gather(
            alice.send_audio(alice_sends_to, packets=25, fill=0x11),
            bob.send_audio(bob_sends_to, packets=25, fill=0x22),
        )
        await bob.wait_for_packets(25, timeout_s=3)
        await alice.wait_for_packets(25, timeout_s=3)

    assert len(bob.received) == 25 and len(alice.received) == 25
    assert {p.payload for p in bob.received} == {bytes([0x11]) * 160}
    assert {p.payload for p in alice.received} == {bytes([0x22]) * 160}
    # symmetric RTP: each phone hears from the very port it sends to
    assert {p.source for p in alice.received} == {alice_sends_to}
    assert {p.source for p in bob.received} == {bob_sends_to}
    await client.delete(call_id)


async def test_two_callnow_legs_are_bridged_after_a_placeholder_offer(rtpengine: Engine) -> None:
    """The callback flow: anchor the owner first, call the visitor later, then bridge."""
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as owner, RtpPeer() as visitor:
        # 1. INVITE the owner with rtpengine's port; the visitor is a placeholder for now
        sdp_for_owner = await client.offer(call_id, VISITOR, placeholder_sdp())
        # 2. the owner answers; keep the visitor-facing SDP for the visitor's INVITE
        sdp_for_visitor = await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        # 4. the visitor answers: swap the placeholder for the visitor's real SDP
        again_for_owner, again_for_visitor = await client.bridge(
            call_id, VISITOR, visitor.sdp(), OWNER, owner.sdp()
        )
        # the ports both phones already have stay valid: no re-INVITE needed
        assert media_address(again_for_owner) == media_address(sdp_for_owner)
        assert media_address(again_for_visitor) == media_address(sdp_for_visitor)

        await asyncio.gather(
            owner.send_audio(media_address(sdp_for_owner), packets=20, fill=0x33),
            visitor.send_audio(media_address(sdp_for_visitor), packets=20, fill=0x44),
        )
        await visitor.wait_for_packets(20, timeout_s=3)
        await owner.wait_for_packets(20, timeout_s=3)

    assert [p.payload[0] for p in visitor.audio_packets()] == [0x33] * 20
    assert [p.payload[0] for p in owner.audio_packets()] == [0x44] * 20
    stats = await client.delete(call_id)
    assert stats["result"] == "ok"


async def test_anchored_callback_wraps_the_flow_for_the_engine(
    rtpengine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, client = rtpengine
    prompt = await PromptRenderer(tmp_path_factory.getbasetemp() / "prompts").render("Hello.")
    media = AnchoredCallback(client, call_id=new_call_id())
    async with RtpPeer() as owner, RtpPeer() as visitor:
        sdp_for_owner = await media.offer_for_owner()
        await media.owner_answered(owner.sdp())
        assert await media.play_to_owner(prompt.path) == pytest.approx(prompt.duration_s, abs=0.05)
        await owner.wait_until_quiet(quiet_s=0.4, timeout_s=prompt.duration_s + 5)
        assert owner.received  # the owner heard the prompt
        owner.clear()

        assert await media.visitor_answered(visitor.sdp()) is None  # no re-INVITE needed
        await asyncio.gather(
            owner.send_audio(media_address(sdp_for_owner), packets=10),
            visitor.send_audio(media_address(media.sdp_for_visitor), packets=10),
        )
        await owner.wait_for_packets(10, timeout_s=3)
        await visitor.wait_for_packets(10, timeout_s=3)
        await media.delete()

    assert (len(owner.received), len(visitor.received)) == (10, 10)
    with pytest.raises(RtpengineError):  # the call is gone from rtpengine
        await client.query(media.call_id)


async def test_delete_stops_the_relay_at_once(rtpengine: Engine) -> None:
    """rtpengine's default delete-delay would keep relaying for 30 s; ours is immediate."""
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as alice, RtpPeer() as bob:
        await client.offer(call_id, "alice", alice.sdp())
        sdp_for_alice = await client.answer(call_id, "alice", "bob", bob.sdp())
        await client.delete(call_id)
        # with the daemon's default delete-delay these packets would still reach bob
        await alice.send_audio(media_address(sdp_for_alice), packets=5)
        await bob.wait_for_packets(1, timeout_s=0.5)
    assert bob.received == []
    with pytest.raises(RtpengineError):
        await client.query(call_id)


async def test_query_reports_both_tags_of_the_call(rtpengine: Engine) -> None:
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as owner:
        await client.offer(call_id, VISITOR, placeholder_sdp())
        await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        info = await client.query(call_id)
    assert set(info["tags"]) == {OWNER, VISITOR}
    await client.delete(call_id)


async def test_play_media_sends_the_prompt_to_the_selected_leg(
    rtpengine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, client = rtpengine
    prompt = await PromptRenderer(tmp_path_factory.getbasetemp() / "prompts").render(
        "Call request from Mary."
    )
    call_id = new_call_id()
    async with RtpPeer() as owner:
        sdp_for_owner = await client.offer(call_id, VISITOR, placeholder_sdp())
        await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        duration = await client.play_media(call_id, OWNER, file=prompt.path)
        packets = await owner.wait_until_quiet(quiet_s=0.6, timeout_s=prompt.duration_s + 5)

    assert duration == pytest.approx(prompt.duration_s, abs=0.05)
    expected = prompt.duration_s / PACKET_INTERVAL_S
    assert 0.8 * expected <= len(packets) <= 1.2 * expected + 2
    # G.711 as negotiated (PCMU listed first), from the port the owner was given
    assert {p.payload_type for p in packets} == {PCMU}
    assert {p.source for p in packets} == {media_address(sdp_for_owner)}
    await client.delete(call_id)


async def test_stop_media_cuts_the_prompt_short(
    rtpengine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, client = rtpengine
    prompt = await PromptRenderer(tmp_path_factory.getbasetemp() / "prompts").render(
        "This prompt is long enough to be interrupted before it ends, one two three four five."
    )
    call_id = new_call_id()
    async with RtpPeer() as owner:
        await client.offer(call_id, VISITOR, placeholder_sdp())
        await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        await client.play_media(call_id, OWNER, file=prompt.path)
        await owner.wait_for_packets(10, timeout_s=3)
        await client.stop_media(call_id, OWNER)
        packets = await owner.wait_until_quiet(quiet_s=0.6, timeout_s=prompt.duration_s + 5)
    assert len(packets) < 0.8 * prompt.duration_s / PACKET_INTERVAL_S
    await client.delete(call_id)


async def test_a_second_prompt_replaces_the_first_and_stop_prompt_never_complains(
    rtpengine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, client = rtpengine
    prompt = await PromptRenderer(tmp_path_factory.getbasetemp() / "prompts").render("Hello.")
    media = AnchoredCallback(client, call_id=new_call_id())
    async with RtpPeer() as owner:
        await media.offer_for_owner()
        await media.owner_answered(owner.sdp())
        # nothing played yet: rtpengine refuses `stop media`, the engine's stop_prompt shrugs
        with pytest.raises(RtpengineError, match="Not currently playing"):
            await client.stop_media(media.call_id, media.owner_tag)
        await media.stop_prompt()

        await media.play_to_owner(prompt.path)
        await media.play_to_owner(prompt.path)
        packets = await owner.wait_until_quiet(quiet_s=0.6, timeout_s=2 * prompt.duration_s + 5)
        await media.stop_prompt()  # after the end
    expected = prompt.duration_s / PACKET_INTERVAL_S  # one prompt's worth, not two
    assert 0.8 * expected <= len(packets) <= 1.2 * expected + 2
    await media.delete()


async def test_unknown_call_is_an_rtpengine_error_when_fatal(rtpengine: Engine) -> None:
    _, client = rtpengine
    with pytest.raises(RtpengineError) as caught:
        await client.delete(new_call_id(), "nobody", fatal=True)
    assert "not found" in caught.value.reason


async def test_play_media_of_a_missing_file_is_an_rtpengine_error(rtpengine: Engine) -> None:
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as owner:
        await client.offer(call_id, VISITOR, placeholder_sdp())
        await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        with pytest.raises(RtpengineError):
            await client.play_media(call_id, OWNER, file="/nonexistent/prompt.wav")
    await client.delete(call_id)


async def test_nothing_listening_is_rtpengine_unavailable_within_the_timeout() -> None:
    timeout_s = 0.4
    async with RtpengineClient("127.0.0.1", free_port(), timeout_s=timeout_s) as client:
        with pytest.raises(RtpengineUnavailable):
            # the outer bound only proves it gives up by itself instead of hanging
            await asyncio.wait_for(client.ping(), timeout=timeout_s + 2)


async def test_concurrent_requests_are_matched_to_their_replies_by_cookie(
    rtpengine: Engine,
) -> None:
    _, client = rtpengine
    calls = [(new_call_id(), f"tag-{i}") for i in range(10)]
    sdps = await asyncio.gather(
        *(client.offer(call_id, tag, placeholder_sdp()) for call_id, tag in calls)
    )
    infos = await asyncio.gather(*(client.query(call_id) for call_id, _ in calls))
    # each call got its own ports, and each query reply is about the call that was asked for
    assert len({media_address(sdp) for sdp in sdps}) == len(calls)
    for (_, tag), info in zip(calls, infos, strict=True):
        assert tag in info["tags"]
        assert not any(other in info["tags"] for _, other in calls if other != tag)
    await asyncio.gather(*(client.delete(call_id) for call_id, _ in calls))


async def test_without_port_latching_a_re_offer_moves_the_port_the_owner_already_has(
    rtpengine: Engine,
) -> None:
    """Why `bridge()` sends `port latching`: rtpengine 10.5's default would strand the owner."""
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as owner, RtpPeer() as visitor:
        sdp_for_owner = await client.offer(call_id, VISITOR, placeholder_sdp())
        await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        re_offered = await client.offer(call_id, VISITOR, visitor.sdp())
    assert media_address(re_offered) != media_address(sdp_for_owner)
    await client.delete(call_id)


async def test_block_media_silences_one_direction_until_unblocked(rtpengine: Engine) -> None:
    _, client = rtpengine
    call_id = new_call_id()
    async with RtpPeer() as owner, RtpPeer() as visitor:
        sdp_for_owner = await client.offer(call_id, VISITOR, placeholder_sdp())
        sdp_for_visitor = await client.answer(call_id, VISITOR, OWNER, owner.sdp())
        await client.bridge(call_id, VISITOR, visitor.sdp(), OWNER, owner.sdp())

        await client.block_media(call_id, OWNER)
        await owner.send_audio(media_address(sdp_for_owner), packets=10)
        await visitor.send_audio(media_address(sdp_for_visitor), packets=10)
        await owner.wait_for_packets(10, timeout_s=3)
        # the other direction still flows, so anything from the owner would have arrived too
        heard_while_blocked = len(visitor.received)

        await client.unblock_media(call_id, OWNER)
        await owner.send_audio(media_address(sdp_for_owner), packets=10)
        await visitor.wait_for_packets(10, timeout_s=3)

    assert heard_while_blocked == 0
    assert len(owner.received) == 10
    assert len(visitor.received) == 10
    await client.delete(call_id)
