"""`LiveTelephony` on its own: URIs built only from digits, the start/stop lifecycle, and a
callback whose number is refused before anything reaches SIP."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings, Settings, SipSettings
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.request_state import RequestState
from callnow.engine.live import LiveTelephony, UnsafeNumber, flow_limits, owner_uri, trunk_uri
from callnow.engine.live.telephony import GC_YOUNG_THRESHOLD, tune_garbage_collector
from callnow.telephony.rtpengine import RtpengineUnavailable
from callnow.telephony.sip import SipStack
from tests.engine.live_helpers import facts, live_rig
from tests.support.ports import free_port

# -- process settings --------------------------------------------------------------------------


def test_garbage_collector_young_threshold_is_only_ever_raised() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's defaults
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        gc.set_threshold(GC_YOUNG_THRESHOLD * 3, 5, 5)  # an operator's own, higher choice
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 3, 5, 5)
    finally:
        gc.set_threshold(*saved)


# -- URIs --------------------------------------------------------------------------------------


def test_trunk_uri_fills_each_placeholder_from_the_e164_number() -> None:
    number = "+61290375678"
    assert trunk_uri("sip:{e164}@trunk:5060", number) == "sip:+61290375678@trunk:5060"
    assert trunk_uri("sip:{digits}@trunk", number) == "sip:61290375678@trunk"
    assert trunk_uri("sip:{national}@trunk;user=phone", number, "AU") == (
        "sip:0290375678@trunk;user=phone"
    )


def test_a_foreign_number_has_no_national_form() -> None:
    with pytest.raises(UnsafeNumber):
        trunk_uri("sip:{national}@trunk", "+14155550123", "AU")


@pytest.mark.parametrize(
    "number",
    [
        "61290375678",  # no '+': not E.164
        "+61 290375678",
        "+61290375678@evil.example",
        "+61290375678;transport=tcp",
        "+6129037567\r\nX: y",
        "+0290375678",  # no country code starts with 0
        "+1234567890123456",  # longer than E.164 allows
        "",
    ],
)
def test_trunk_uri_refuses_anything_but_e164_digits(number: str) -> None:
    with pytest.raises(UnsafeNumber):
        trunk_uri("sip:{e164}@trunk", number)


@pytest.mark.parametrize("internal", ["", "1001@evil", "10 01", "1001>", "+1001", "1" * 16])
def test_owner_uri_refuses_anything_but_digits(internal: str) -> None:
    with pytest.raises(UnsafeNumber):
        owner_uri("sip:{internal}@pbx:5080", internal)


def test_owner_uri_template_braces_other_than_internal_are_left_alone() -> None:
    assert owner_uri("sip:{internal}@pbx;x={y}", "1001") == "sip:1001@pbx;x={y}"


def test_flow_limits_come_from_the_sip_settings() -> None:
    sip = SipSettings(owner_ring_timeout_s=20, visitor_ring_timeout_s=40, max_call_duration_s=600)
    limits = flow_limits(sip, digit_wait_s=3)
    assert (limits.owner_ring_s, limits.visitor_ring_s) == (20, 40)
    assert (limits.max_call_duration_s, limits.digit_wait_s) == (600, 3)


# -- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.peers
async def test_start_and_stop_spawn_rtpengine_and_free_the_sip_port(
    rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        demo_data=False,
        sip=SipSettings(listen_port=free_port()),
        rtpengine=rtpengine_settings.model_copy(update={"mode": "spawn"}),
    )
    telephony = await LiveTelephony.start(settings)
    try:
        assert telephony.sip_address == ("127.0.0.1", settings.sip.listen_port)
        assert telephony.process is not None and telephony.process.running
        await telephony.rtpengine.ping()
        process = telephony.process
    finally:
        await telephony.stop()
    assert not process.running
    await telephony.stop()  # idempotent
    # The process-wide SIP stack slot is free again.
    stack = SipStack("127.0.0.1", 0)
    await stack.start()
    await stack.stop()


@pytest.mark.peers
async def test_a_failed_start_leaves_nothing_running(
    rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    # external mode, but nothing listens on the ng port
    settings = Settings(
        data_dir=tmp_path,
        demo_data=False,
        sip=SipSettings(listen_port=free_port()),
        rtpengine=rtpengine_settings.model_copy(update={"mode": "external", "timeout_s": 0.3}),
    )
    with pytest.raises(RtpengineUnavailable):
        await LiveTelephony.start(settings)
    stack = SipStack("127.0.0.1", 0)
    await stack.start()  # would raise if the failed start had left its stack running
    await stack.stop()


# -- refused before SIP --------------------------------------------------------------------------


@pytest.mark.peers
async def test_a_visitor_number_that_is_not_e164_is_refused_before_anything_opens(
    sipp_peer, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("answer.xml")
    trunk = sipp_peer("answer.xml")
    async with live_rig(owner, trunk, rtpengine_settings, tmp_path / "p", tmp_path) as rig:
        with pytest.raises(UnsafeNumber):
            await rig.engine.start_callback(replace(facts(), visitor_e164="+61290375678@evil"))
        assert rig.telephony.open_channels == 0
    assert owner.received() == [] and trunk.received() == []
    assert rig.recorder.records == [] and rig.recorder.states == []


@pytest.mark.peers
async def test_an_owner_number_that_is_not_digits_fails_the_leg_without_an_invite(
    sipp_peer, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("answer.xml")
    trunk = sipp_peer("answer.xml")
    request = replace(facts(), owner_internal_number="1001@127.0.0.1")
    async with live_rig(owner, trunk, rtpengine_settings, tmp_path / "p", tmp_path) as rig:
        outcome = await rig.outcome(await rig.start(request))
        assert rig.telephony.open_channels == 0
    assert (outcome.state, outcome.reason) == (RequestState.OWNER_UNREACHABLE, "owner_failed")
    assert owner.received() == [] and trunk.received() == []
    assert rig.record(LegRole.OWNER).disposition is Disposition.FAILED
