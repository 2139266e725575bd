"""Call records: what billing sees of each leg."""

from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.calls import (
    CallRecord,
    Disposition,
    FailureCause,
    LegRole,
    build_call_record,
    derive_disposition,
)

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(**overrides: object) -> CallRecord:
    facts: dict[str, object] = {
        "request_ref": "req-1",
        "role": LegRole.VISITOR,
        "destination": "+61290375678",
        "started_at": at(0),
        "ended_at": at(60),
    }
    facts.update(overrides)
    return build_call_record(**facts)  # type: ignore[arg-type]  # each value fits its field


def test_an_answered_leg_bills_whole_seconds_from_answer_to_end() -> None:
    leg = record(ringing_at=at(1), answered_at=at(5), ended_at=at(67.9), sip_code=200)

    assert leg.disposition is Disposition.ANSWERED
    assert leg.billable_seconds == 62  # 62.9 s rounded down; billing applies its own increments


def test_a_leg_answered_and_ended_in_the_same_instant_bills_nothing() -> None:
    assert record(answered_at=at(5), ended_at=at(5)).billable_seconds == 0


@pytest.mark.parametrize(
    ("cause", "disposition"),
    [
        (FailureCause.BUSY, Disposition.BUSY),
        (FailureCause.NO_ANSWER, Disposition.NO_ANSWER),
        (FailureCause.REJECTED, Disposition.DECLINED),
        (FailureCause.FAILED, Disposition.FAILED),
    ],
)
def test_an_unanswered_leg_takes_its_disposition_from_the_failure_cause(
    cause: FailureCause, disposition: Disposition
) -> None:
    leg = record(ringing_at=at(1), failure_cause=cause, sip_code=500)

    assert leg.disposition is disposition
    assert leg.billable_seconds == 0


@pytest.mark.parametrize(
    ("sip_code", "disposition"),
    [
        (486, Disposition.BUSY),
        (600, Disposition.BUSY),
        (480, Disposition.NO_ANSWER),
        (408, Disposition.NO_ANSWER),
        (603, Disposition.DECLINED),
        (487, Disposition.CANCELLED),
        (404, Disposition.FAILED),
        (503, Disposition.FAILED),
    ],
)
def test_without_a_cause_the_sip_final_code_decides(
    sip_code: int, disposition: Disposition
) -> None:
    assert record(sip_code=sip_code).disposition is disposition


def test_a_leg_we_gave_up_on_before_any_answer_or_failure_is_cancelled() -> None:
    assert record(ringing_at=at(2)).disposition is Disposition.CANCELLED


def test_an_answer_outweighs_any_failure_reported_later() -> None:
    decided = derive_disposition(answered=True, failure_cause=FailureCause.FAILED, sip_code=503)

    assert decided is Disposition.ANSWERED


def test_records_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record(started_at=datetime(2026, 11, 25, 9, 0), ended_at=datetime(2026, 11, 25, 9, 1))


def test_records_refuse_times_out_of_order() -> None:
    with pytest.raises(ValueError, match="between start and end"):
        record(answered_at=at(90))
    with pytest.raises(ValueError, match="end before it started"):
        record(started_at=at(10), ended_at=at(5))


def test_records_refuse_an_inconsistent_disposition_or_billable_seconds() -> None:
    with pytest.raises(ValueError, match="answered exactly when"):
        CallRecord(
            request_ref="req-1",
            role=LegRole.OWNER,
            destination="201",
            started_at=at(0),
            ringing_at=None,
            answered_at=None,
            ended_at=at(10),
            sip_code=None,
            disposition=Disposition.ANSWERED,
            billable_seconds=0,
        )
    with pytest.raises(ValueError, match="billable_seconds"):
        CallRecord(
            request_ref="req-1",
            role=LegRole.OWNER,
            destination="201",
            started_at=at(0),
            ringing_at=None,
            answered_at=at(1),
            ended_at=at(10),
            sip_code=200,
            disposition=Disposition.ANSWERED,
            billable_seconds=60,
        )


def test_each_role_knows_the_other() -> None:
    assert LegRole.OWNER.other is LegRole.VISITOR
    assert LegRole.VISITOR.other is LegRole.OWNER
