"""Re-INVITEs on a bridged callback, against real SIPp phones and a real rtpengine.

The visitor's phone puts the call on hold (a=sendonly), resumes from a new media port; the
answers on the wire follow RFC 3264 6.1, the owner's phone is re-INVITEd with the same
direction through rtpengine, and after the resume the audio flows both ways at the new port.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import (
    TEST_LIMITS,
    facts,
    live_rig,
    media_address,
    methods_received,
    wait_for_exit,
    wait_for_request,
)
from tests.engine.test_live_callbacks import exchange_audio
from tests.peers.rtp import RtpPeer
from tests.peers.sipp import SipMessage, SippPeer

pytestmark = pytest.mark.peers

# Long enough for hold, resume (and a glare's retry after up to 4 s) before the engine's
# maximum call duration ends the call with a BYE to both phones.
REINVITE_LIMITS = replace(TEST_LIMITS, max_call_duration_s=12)
MOVED_HOST = "127.0.0.2"


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def direction_of(sdp: str) -> str:
    found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", sdp, re.M)
    return found[-1] if found else "sendrecv"


def answers_to_invites(peer: SippPeer, method: str = "INVITE") -> list[SipMessage]:
    return [m for m in peer.received() if m.status == 200 and m.cseq[1] == method]


def origin_of(sdp: str) -> list[str]:
    found = re.search(r"^o=(\S+) (\d+) (\d+) IN IP4 (\S+)", sdp, re.M)
    assert found, sdp
    return list(found.groups())


async def run_hold_and_resume(
    owner_scenario: str,
    trunk_scenario: str,
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
) -> tuple[SippPeer, SippPeer]:
    # The visitor's phone moves to another address and port when it resumes (re-anchoring).
    async with (
        RtpPeer() as owner_phone,
        RtpPeer() as visitor_phone,
        RtpPeer(MOVED_HOST) as moved_phone,
    ):
        owner = sipp_peer(owner_scenario, {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer(
            trunk_scenario,
            {
                "rtp_port": str(visitor_phone.port),
                "rtp_host2": MOVED_HOST,
                "rtp_port2": str(moved_phone.port),
            },
        )
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=REINVITE_LIMITS
        ) as rig:
            handle = await rig.start(facts())
            owner_invite = await wait_for_request(owner, "INVITE")
            owner_sends_to = media_address(owner_invite.body)
            await owner_phone.wait_until_quiet(quiet_s=0.6, timeout_s=20, first_packet_s=8)
            await owner_phone.send_digit(owner_sends_to, "1")
            trunk_invite = await wait_for_request(trunk, "INVITE")
            visitor_sends_to = media_address(trunk_invite.body)
            await rig.wait_for_state(RequestState.CONNECTED)

            # Resumed from the new port: both phones hear each other through rtpengine, at
            # the addresses they were given first (port latching keeps them).
            await until_resumed(trunk, "UPDATE" if "update" in trunk_scenario else "INVITE")
            await exchange_audio(owner_phone, owner_sends_to, moved_phone, visitor_sends_to)
            outcome = await rig.outcome(handle, timeout=30)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    return owner, trunk


async def until_resumed(trunk: SippPeer, method: str = "INVITE") -> None:
    """Until our 200 to the visitor's second re-INVITE or UPDATE (the resume) has arrived."""
    import asyncio

    async with asyncio.timeout(15):
        while len(answers_to_invites(trunk, method)) < 2:
            await asyncio.sleep(0.05)


async def test_visitor_hold_and_resume_reach_the_owner_and_media_follows(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner, trunk = await run_hold_and_resume(
        "follows_hold.xml",
        "trunk_hold_resume.xml",
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
    )

    # The visitor's phone: hold answered recvonly, resume answered sendrecv (SIPp checked the
    # bodies too), each with our one session's o= line, its version growing.
    hold, resume = answers_to_invites(trunk)
    assert (direction_of(hold.body), direction_of(resume.body)) == ("recvonly", "sendrecv")
    first = origin_of(wait_first(trunk, "INVITE").body)
    assert origin_of(hold.body)[:2] == first[:2] == origin_of(resume.body)[:2]
    assert int(first[2]) < int(origin_of(hold.body)[2]) < int(origin_of(resume.body)[2])
    # The owner's phone: re-INVITEd with the hold and the resume, in the same session.
    invites = owner.received("INVITE")
    assert [direction_of(m.body) for m in invites[1:]] == ["sendonly", "sendrecv"]
    assert all(m.header("Call-ID") == invites[0].header("Call-ID") for m in invites)
    assert origin_of(invites[1].body)[:2] == origin_of(invites[0].body)[:2]
    assert methods_received(owner) == ["INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "BYE"]


def wait_first(peer: SippPeer, method: str) -> SipMessage:
    return peer.received(method)[0]


async def test_glare_is_refused_with_491_and_our_re_invite_is_retried_later(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner, trunk = await run_hold_and_resume(
        "owner_glare.xml",
        "trunk_hold_resume.xml",
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
    )

    # SIPp's scenario checked the 491 we sent; here: our hold re-INVITE was sent again after
    # RFC 3261 14.1's wait, with a new CSeq, and the hold still reached the visitor's answer.
    invites = owner.received("INVITE")
    held_first, held_again = invites[1], invites[2]
    assert direction_of(held_first.body) == direction_of(held_again.body) == "sendonly"
    assert held_again.cseq[0] > held_first.cseq[0]
    assert held_again.logged_at - held_first.logged_at >= 2.0
    hold, resume = answers_to_invites(trunk)
    assert (direction_of(hold.body), direction_of(resume.body)) == ("recvonly", "sendrecv")


async def test_owner_hold_and_resume_reach_the_visitor(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    async with RtpPeer() as visitor_phone:
        owner = sipp_peer("owner_hold_resume.xml", {"digit": "1"})
        trunk = sipp_peer("follows_hold.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=REINVITE_LIMITS
        ) as rig:
            outcome = await rig.outcome(await rig.start(facts()), timeout=30)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    hold, resume = answers_to_invites(owner)
    assert (direction_of(hold.body), direction_of(resume.body)) == ("recvonly", "sendrecv")
    invites = trunk.received("INVITE")
    assert [direction_of(m.body) for m in invites[1:]] == ["sendonly", "sendrecv"]
    # The carrier keeps seeing our one session (o= of ours, version growing), never the owner's.
    origins = [origin_of(m.body) for m in invites]
    assert {tuple(o[:2]) for o in origins} == {tuple(origins[0][:2])}
    assert origins[0][0] == "callnow"
    assert [int(o[2]) for o in origins] == sorted({int(o[2]) for o in origins})


async def test_an_inactive_hold_is_answered_inactive_and_passed_on_as_inactive(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner, trunk = await run_hold_and_resume(
        "follows_hold_inactive.xml",
        "trunk_hold_inactive.xml",
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
    )

    hold, resume = answers_to_invites(trunk)
    assert (direction_of(hold.body), direction_of(resume.body)) == ("inactive", "sendrecv")
    invites = owner.received("INVITE")
    assert [direction_of(m.body) for m in invites[1:]] == ["inactive", "sendrecv"]


async def test_owner_hold_and_resume_by_update_reach_the_visitor(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """RFC 3311: the owner's phone holds and resumes by UPDATE; each is answered like the
    re-INVITE (mirrored direction, our Contact) and passed on to the visitor by re-INVITE;
    an UPDATE without an offer (a session refresh) is answered 200 without one."""
    async with RtpPeer() as visitor_phone:
        owner = sipp_peer("owner_update_hold_resume.xml", {"digit": "1"})
        trunk = sipp_peer("follows_hold.xml", {"rtp_port": str(visitor_phone.port)})
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=REINVITE_LIMITS
        ) as rig:
            outcome = await rig.outcome(await rig.start(facts()), timeout=30)

    assert (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert await wait_for_exit(trunk) == 0, trunk.diagnostics()
    hold, resume, refresh = [m for m in owner.received() if m.cseq[1] == "UPDATE"]
    assert (hold.status, resume.status, refresh.status) == (200, 200, 200)
    assert (direction_of(hold.body), direction_of(resume.body)) == ("recvonly", "sendrecv")
    assert refresh.body == ""
    invites = trunk.received("INVITE")
    assert [direction_of(m.body) for m in invites[1:]] == ["sendonly", "sendrecv"]
    # Our answers continue the session the owner's phone knows (same o=, version growing).
    first_answer = owner.received("INVITE")[0].body
    origins = [origin_of(m.body) for m in (hold, resume)]
    assert {tuple(o[:2]) for o in origins} == {tuple(origin_of(first_answer)[:2])}


async def test_visitor_hold_and_resume_by_update_reach_the_owner_and_media_follows(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """RFC 3311 from the carrier's side: hold, then resume from a new address, by UPDATE;
    answered like re-INVITEs, passed to the owner by re-INVITE, audio both ways after."""
    owner, trunk = await run_hold_and_resume(
        "follows_hold.xml",
        "trunk_update_hold_resume.xml",
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
    )

    hold, resume = answers_to_invites(trunk, "UPDATE")
    assert (direction_of(hold.body), direction_of(resume.body)) == ("recvonly", "sendrecv")
    first = origin_of(wait_first(trunk, "INVITE").body)
    assert origin_of(hold.body)[:2] == first[:2] == origin_of(resume.body)[:2]
    assert int(first[2]) < int(origin_of(hold.body)[2]) < int(origin_of(resume.body)[2])
    invites = owner.received("INVITE")
    assert [direction_of(m.body) for m in invites[1:]] == ["sendonly", "sendrecv"]
