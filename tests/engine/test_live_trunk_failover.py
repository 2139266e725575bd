"""Several trunks (real SIPp trunks, real rtpengine): chosen by destination prefix, failover to
the next on 5xx or no response, never on busy; the visitor's leg is recorded (and charged)
once, through the trunk that carried it."""

from __future__ import annotations

from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.flow import Reason
from callnow.domain.request_state import RequestState
from tests.engine.live_helpers import (
    VISITOR_NUMBER,
    facts,
    live_rig,
    methods_received,
    template_for,
    wait_for_exit,
)
from tests.peers.sipp import SippPeer
from tests.support.ports import free_port

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def second_trunk(peer: SippPeer, **settings: object) -> dict[str, object]:
    return {"trunks": [{"name": "backup", "uri_template": template_for(peer, "e164"), **settings}]}


def visitor_legs(rig) -> tuple[list[str], list]:
    dialled = [number for role, number in rig.recorder.dialling if role is LegRole.VISITOR]
    records = [r for r in rig.recorder.records if r.role is LegRole.VISITOR]
    return dialled, records


async def test_first_trunk_503_the_call_completes_through_the_second_with_one_visitor_leg(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    first = sipp_peer("trunk_503.xml")
    second = sipp_peer("answer_then_bye.xml")
    async with live_rig(
        owner, first, rtpengine_settings, prompt_cache, tmp_path, more_settings=second_trunk(second)
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert outcome.state is RequestState.COMPLETED, outcome
    assert await wait_for_exit(first) == 0, first.diagnostics()
    assert await wait_for_exit(second) == 0, second.diagnostics()
    assert methods_received(first) == ["INVITE", "ACK"]  # the 503 was ACKed, nothing more
    assert methods_received(second) == ["INVITE", "ACK"]  # then the visitor hung up
    invite = second.received("INVITE")[0]
    assert invite.request_uri == f"sip:{VISITOR_NUMBER}@127.0.0.1:{second.port}"
    # One visitor leg as the flow, the records and billing see it: the one that was answered.
    dialled, records = visitor_legs(rig)
    assert dialled == [VISITOR_NUMBER]
    assert len(records) == 1 and records[0].disposition is Disposition.ANSWERED


async def test_busy_is_the_visitors_answer_no_other_trunk_is_tried(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    first = sipp_peer("busy.xml")
    second = sipp_peer("answer.xml")
    async with live_rig(
        owner, first, rtpengine_settings, prompt_cache, tmp_path, more_settings=second_trunk(second)
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert (outcome.state, outcome.reason) == (
        RequestState.VISITOR_UNREACHABLE,
        Reason.VISITOR_BUSY,
    )
    assert await wait_for_exit(first) == 0, first.diagnostics()
    assert second.received() == []
    _, records = visitor_legs(rig)
    assert [(r.disposition, r.sip_code) for r in records] == [(Disposition.BUSY, 486)]


async def test_a_trunk_that_never_responds_is_left_after_its_setup_timeout(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    second = sipp_peer("answer_then_bye.xml")
    nobody = free_port()  # nothing listens there: no 100 Trying, no answer
    async with live_rig(
        owner,
        second,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        trunk_uri_template=f"sip:{{e164}}@127.0.0.1:{nobody}",
        trunk_settings={"setup_timeout_s": 1},
        more_settings=second_trunk(second),
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert outcome.state is RequestState.COMPLETED, outcome
    assert await wait_for_exit(second) == 0, second.diagnostics()
    _, records = visitor_legs(rig)
    assert len(records) == 1 and records[0].disposition is Disposition.ANSWERED


async def test_the_trunk_is_chosen_by_destination_prefix(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    us_only = sipp_peer("answer.xml")
    australia = sipp_peer("answer_then_bye.xml")
    async with live_rig(
        owner,
        us_only,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        trunk_settings={"prefixes": ["1"]},
        more_settings=second_trunk(australia, prefixes=["614", "612"]),
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert outcome.state is RequestState.COMPLETED, outcome
    assert us_only.received() == []
    assert methods_received(australia) == ["INVITE", "ACK"]


def carrier_deck(path: Path, per_minute: str) -> str:
    path.write_text(
        "prefix,description,connection_fee,price_per_minute,initial_increment,"
        f"subsequent_increment,minimum_charge\n61,Australia,0,{per_minute},60,60,0\n"
    )
    return str(path)


async def test_the_cheapest_trunk_by_its_carrier_deck_is_tried_first(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    """Both trunks may dial the number; the second in the settings is cheaper, so it carries
    the call and the first is never asked."""
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    dear = sipp_peer("answer.xml")
    cheap = sipp_peer("answer_then_bye.xml")
    async with live_rig(
        owner,
        dear,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        trunk_settings={"rate_deck": carrier_deck(tmp_path / "dear.csv", "0.05")},
        more_settings=second_trunk(cheap, rate_deck=carrier_deck(tmp_path / "cheap.csv", "0.01")),
    ) as rig:
        outcome = await rig.outcome(await rig.start(facts()))

    assert outcome.state is RequestState.COMPLETED, outcome
    assert dear.received() == []
    assert methods_received(cheap) == ["INVITE", "ACK"]
