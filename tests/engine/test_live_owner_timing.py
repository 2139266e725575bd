"""How long a silent owner's phone is held: `[sip] owner_prompt_plays` and
`owner_digit_wait_s`, with a short default so a voicemail box that answers does not record
the request over and over. Checked as the owner's phone hears it (real SIPp, real rtpengine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from callnow.config import RtpengineSettings, SipSettings
from callnow.domain.flow import FlowLimits
from callnow.domain.prompt_text import confirm_prompt
from callnow.domain.request_state import RequestState
from callnow.engine.live import flow_limits
from callnow.telephony.prompts import wav_duration
from tests.engine.live_helpers import (
    VISITOR_NAME,
    VISITOR_NUMBER,
    facts,
    live_rig,
    methods_received,
    wait_for_exit,
)
from tests.peers.rtp import PACKET_INTERVAL_S, RtpPeer


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def test_a_silent_owner_is_asked_less_by_default_than_the_flow_allows() -> None:
    default = flow_limits(SipSettings())
    assert (default.max_prompt_plays, default.digit_wait_s) == (2, 4)
    assert default.max_prompt_plays < FlowLimits().max_prompt_plays
    custom = flow_limits(SipSettings(owner_prompt_plays=1, owner_digit_wait_s=2.5))
    assert (custom.max_prompt_plays, custom.digit_wait_s) == (1, 2.5)


@pytest.mark.parametrize(
    "bad", [{"owner_prompt_plays": 0}, {"owner_prompt_plays": 6}, {"owner_digit_wait_s": 0.5}]
)
def test_silent_owner_timing_is_bounded(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SipSettings(**bad)  # type: ignore[arg-type]


@pytest.mark.peers
async def test_one_play_then_the_silent_owners_phone_is_released(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    limits = flow_limits(
        SipSettings(owner_prompt_plays=1, owner_digit_wait_s=1),
        owner_ring_s=1.5,
        visitor_ring_s=1.5,
    )
    async with RtpPeer() as owner_phone:
        owner = sipp_peer("media_answer.xml", {"rtp_port": str(owner_phone.port)})
        trunk = sipp_peer("answer.xml")
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, limits=limits
        ) as rig:
            outcome = await rig.outcome(await rig.start(facts()))
        heard = owner_phone.audio_packets()

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "prompt_unanswered")
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
    assert methods_received(owner) == ["INVITE", "ACK", "BYE"]
    assert trunk.received() == []
    prompt = rig.telephony.renderer.path_for(
        confirm_prompt(caller_number=VISITOR_NUMBER, region="AU", caller_name=VISITOR_NAME)
    )
    # The request was heard once: about one prompt's worth of audio, not two.
    played_s = len(heard) * PACKET_INTERVAL_S
    assert 0.9 * wav_duration(prompt) <= played_s < 1.5 * wav_duration(prompt)
