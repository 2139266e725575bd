"""How SIP and rtpengine reports become the flow's events."""

from datetime import UTC, datetime

import pytest

from callnow.domain.calls import FailureCause, LegRole
from callnow.domain.flow import Digit, DigitSource, LegAnswered, LegEnded, LegFailed, LegRinging
from callnow.engine.translate import from_rtpengine_dtmf, from_sip
from callnow.telephony.dtmf_log import DtmfEvent
from callnow.telephony.sip import events as sip

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
OWNER = LegRole.OWNER
VISITOR = LegRole.VISITOR


def test_progress_and_answer_carry_the_leg_role() -> None:
    assert from_sip(OWNER, sip.Ringing(180, "Ringing", NOW)) == LegRinging(OWNER)
    assert from_sip(VISITOR, sip.Answered("v=0", NOW)) == LegAnswered(VISITOR)


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (486, FailureCause.BUSY),
        (480, FailureCause.NO_ANSWER),
        (603, FailureCause.REJECTED),
        (404, FailureCause.FAILED),
        (403, FailureCause.FAILED),
        (503, FailureCause.FAILED),
        (302, FailureCause.FAILED),
    ],
)
def test_failures_keep_the_sip_code_and_fold_the_cause(code: int, cause: FailureCause) -> None:
    failed = sip.Failed(code, "x", sip.cause_for(code), NOW)

    assert from_sip(VISITOR, failed) == LegFailed(VISITOR, cause, code)


def test_who_ended_the_leg_is_kept() -> None:
    assert from_sip(OWNER, sip.Ended(sip.EndedBy.REMOTE, NOW)) == LegEnded(OWNER, by_remote=True)
    assert from_sip(OWNER, sip.Ended(sip.EndedBy.LOCAL, NOW)) == LegEnded(OWNER, by_remote=False)


def test_only_the_owners_sip_info_keys_count() -> None:
    key = sip.Digit("1", NOW)

    assert from_sip(OWNER, key) == Digit("1", DigitSource.SIP_INFO)
    assert from_sip(VISITOR, key) is None


def test_re_invites_are_not_the_flows_business() -> None:
    assert from_sip(OWNER, sip.RemoteSdpChanged("v=0", NOW)) is None


def dtmf(source_tag: str, event: int) -> DtmfEvent:
    return DtmfEvent(call_id="c1", source_tag=source_tag, event=event, duration_ms=200, volume=10)


def test_rtpengine_keys_count_when_the_owner_pressed_them() -> None:
    assert from_rtpengine_dtmf(dtmf("owner", 2), owner_tag="owner") == Digit(
        "2", DigitSource.RFC4733
    )
    assert from_rtpengine_dtmf(dtmf("visitor", 1), owner_tag="owner") is None
    assert from_rtpengine_dtmf(dtmf("owner", 16), owner_tag="owner") is None  # flash, not a key
