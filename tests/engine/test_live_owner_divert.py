"""The owner's voicemail is "not answered": where the PBX shows it diverted the owner's call
(181 Call Is Being Forwarded, or an answer carrying Diversion or History-Info causes), the
engine hangs up at once, plays nothing into the box and ends the request unreachable
(`owner_voicemail`); with `sip.owner_divert_unanswered` off the box gets the prompt.
Real SIPp playing the PBX, a real rtpengine."""

from __future__ import annotations

from pathlib import Path

import pytest

from callnow.config import RtpengineSettings, SipSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.request_state import RequestState
from callnow.engine.live import flow_limits
from tests.engine.live_helpers import facts, live_rig, methods_received, wait_for_exit
from tests.peers.rtp import RtpPeer
from tests.peers.sipp import SipMessage

pytestmark = pytest.mark.peers

DIVERSION = "Diversion: <sip:1001@127.0.0.1>;reason=no-answer;counter=1"
HISTORY_INFO = (
    "History-Info: <sip:1001@127.0.0.1?Reason=SIP%3Bcause%3D408>;index=1, "
    "<sip:vm1001@127.0.0.1;cause=408>;index=1.1;mp=1"
)
# One play, a short wait: the control case (setting off) ends in seconds.
LIMITS = flow_limits(
    SipSettings(owner_prompt_plays=1, owner_digit_wait_s=1), owner_ring_s=5, visitor_ring_s=5
)


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def _answer_sent(messages: list[SipMessage]) -> SipMessage:
    return next(m for m in messages if m.status == 200 and m.cseq[1] == "INVITE")


@pytest.mark.parametrize(
    ("scenario", "divert", "shown_by"),
    [
        ("owner_diverted_answer.xml", DIVERSION, 200),
        ("owner_diverted_answer.xml", HISTORY_INFO, 200),
        ("owner_forwarded_181.xml", "", 181),
    ],
    ids=["diversion", "history-info", "181-then-200"],
)
async def test_a_diverted_owner_call_is_hung_up_unprompted_as_voicemail(
    scenario: str,
    divert: str,
    shown_by: int,
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
) -> None:
    async with RtpPeer() as voicemail:
        keys = {"rtp_port": str(voicemail.port)} | ({"divert": divert} if divert else {})
        owner = sipp_peer(scenario, keys)
        trunk = sipp_peer("answer.xml")
        async with live_rig(
            owner, trunk, rtpengine_settings, prompt_cache, tmp_path, LIMITS
        ) as rig:
            outcome = await rig.outcome(await rig.start(facts()))
            assert await wait_for_exit(owner) == 0, owner.diagnostics()
            # Long enough for a prompt to have started, had one been asked for.
            await voicemail.wait_for_packets(1, timeout_s=1.0)
        heard = voicemail.received

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "owner_voicemail")
    methods = methods_received(owner)
    # The 181 alone ends it: CANCEL; the box's 200 that crossed it is ACKed, then BYE.
    cancelled = ["INVITE", "CANCEL"] if shown_by == 181 else ["INVITE"]
    assert methods == [*cancelled, "ACK", "BYE"], methods
    # Hung up at once: the BYE follows the box's answer by far less than the prompt would last
    # (about 5 s); the bound leaves room for a loaded machine.
    answered_at = _answer_sent(owner.sent()).logged_at  # the box's 200 to the INVITE
    bye_at = owner.received("BYE")[0].logged_at
    assert 0 <= bye_at - answered_at < 3.0, bye_at - answered_at
    assert heard == []  # nothing played into the box
    assert trunk.received() == []  # no visitor leg
    record = rig.record(LegRole.OWNER)
    assert record.disposition is Disposition.NO_ANSWER
    assert (record.sip_code, record.billable_seconds, record.answered_at) == (shown_by, 0, None)
    assert [r.role for r in rig.recorder.records] == [LegRole.OWNER]


async def test_with_the_setting_off_a_diverted_answer_hears_the_prompt(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """For a PBX that diverts to a colleague: the answer is an answer."""
    async with RtpPeer() as colleague:
        owner = sipp_peer(
            "owner_diverted_answer.xml", {"rtp_port": str(colleague.port), "divert": DIVERSION}
        )
        trunk = sipp_peer("answer.xml")
        async with live_rig(
            owner,
            trunk,
            rtpengine_settings,
            prompt_cache,
            tmp_path,
            LIMITS,
            sip_settings={"owner_divert_unanswered": False},
        ) as rig:
            outcome = await rig.outcome(await rig.start(facts()))
        heard = colleague.audio_packets()

    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "prompt_unanswered")
    assert len(heard) >= 50  # the prompt played (a second of it at least)
    assert rig.record(LegRole.OWNER).disposition is Disposition.ANSWERED
    assert await wait_for_exit(owner) == 0, owner.diagnostics()
