"""Call-leg vocabulary shared by the callback flow, the engine and billing.

A callback has at most two legs: the owner's extension (dialled first, on its internal number)
and the visitor's phone (dialled through the trunk). Each leg that was dialled ends in
exactly one `CallRecord`, which billing rates and the web shows in the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from callnow.domain.request_state import RequestState


class LegRole(StrEnum):
    OWNER = "owner"
    VISITOR = "requester"  # stored and published value, kept (docs/glossary.md)

    @property
    def other(self) -> LegRole:
        return LegRole.VISITOR if self is LegRole.OWNER else LegRole.OWNER


class FailureCause(StrEnum):
    """Why a dialled leg never got answered, as the telephony adapter classified it."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    # The callee refused the call (SIP 603 Decline, or the phone's reject button).
    REJECTED = "rejected"


class Disposition(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    # We gave up on the leg before it was answered (the other side hung up, a web cancel).
    CANCELLED = "cancelled"
    FAILED = "failed"


_DISPOSITION_BY_CAUSE = {
    FailureCause.BUSY: Disposition.BUSY,
    FailureCause.NO_ANSWER: Disposition.NO_ANSWER,
    FailureCause.FAILED: Disposition.FAILED,
    FailureCause.REJECTED: Disposition.DECLINED,
}

# Used only when the adapter reported a final code without classifying it.
_DISPOSITION_BY_SIP_CODE = {
    486: Disposition.BUSY,
    600: Disposition.BUSY,
    408: Disposition.NO_ANSWER,
    480: Disposition.NO_ANSWER,
    603: Disposition.DECLINED,
    487: Disposition.CANCELLED,
}


@dataclass(frozen=True)
class CallRecord:
    """What happened on one leg. Times are timezone-aware; unanswered legs bill 0 seconds."""

    request_ref: str
    role: LegRole
    # E.164 for the visitor (+61290375678), the internal extension number for the owner.
    destination: str
    started_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime
    sip_code: int | None
    disposition: Disposition
    billable_seconds: int

    def __post_init__(self) -> None:
        for name in ("started_at", "ringing_at", "answered_at", "ended_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        observed = [t for t in (self.ringing_at, self.answered_at) if t is not None]
        if any(t < self.started_at or t > self.ended_at for t in observed):
            raise ValueError("ringing and answer times must lie between start and end")
        if self.ended_at < self.started_at:
            raise ValueError("a leg cannot end before it started")
        if (self.disposition is Disposition.ANSWERED) != (self.answered_at is not None):
            raise ValueError("a leg is answered exactly when it has an answer time")
        if self.billable_seconds != billable_seconds(self.answered_at, self.ended_at):
            raise ValueError("billable_seconds must be whole seconds from answer to end")


def billable_seconds(answered_at: datetime | None, ended_at: datetime) -> int:
    """Whole seconds from answer to end, rounded down; 0 for a leg that was never answered.

    Rounding down keeps the record a plain fact; billing applies its own increments
    (per-minute rounding, minimum charges) on top.
    """
    if answered_at is None:
        return 0
    return max(0, math.floor((ended_at - answered_at).total_seconds()))


def derive_disposition(
    *,
    answered: bool,
    failure_cause: FailureCause | None,
    sip_code: int | None,
) -> Disposition:
    """An answered leg is ANSWERED whatever happened later; otherwise the adapter's cause wins,
    then the SIP final code, and a leg with neither was abandoned by us: CANCELLED."""
    if answered:
        return Disposition.ANSWERED
    if failure_cause is not None:
        return _DISPOSITION_BY_CAUSE[failure_cause]
    if sip_code is not None and sip_code >= 300:
        return _DISPOSITION_BY_SIP_CODE.get(sip_code, Disposition.FAILED)
    return Disposition.CANCELLED


def build_call_record(
    *,
    request_ref: str,
    role: LegRole,
    destination: str,
    started_at: datetime,
    ended_at: datetime,
    ringing_at: datetime | None = None,
    answered_at: datetime | None = None,
    sip_code: int | None = None,
    failure_cause: FailureCause | None = None,
) -> CallRecord:
    """Derive disposition and billable seconds from what was observed on the leg."""
    return CallRecord(
        request_ref=request_ref,
        role=role,
        destination=destination,
        started_at=started_at,
        ringing_at=ringing_at,
        answered_at=answered_at,
        ended_at=ended_at,
        sip_code=sip_code,
        disposition=derive_disposition(
            answered=answered_at is not None, failure_cause=failure_cause, sip_code=sip_code
        ),
        billable_seconds=billable_seconds(answered_at, ended_at),
    )


# -- what the engine writes down about a callback, in order, as it happens --


@dataclass(frozen=True, slots=True)
class LegDialling:
    """Write-ahead: the leg is about to be dialled (a crash after this never dials it again)."""

    role: LegRole
    destination: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LegAnsweredAt:
    """The leg was answered (its 200 OK arrived): stored at once, so an engine that dies or
    cannot store the leg's record later still leaves proof of the answer to bill."""

    role: LegRole
    at: datetime


@dataclass(frozen=True, slots=True)
class PreparedHangup:
    """How anyone can end a leg the engine that dialled it left up: the SIP request (CANCEL
    while it rings, BYE once answered) exactly as it goes on the wire, where it goes, and the
    media session to delete. Opaque here: only the telephony builds and sends it."""

    method: str  # "CANCEL" or "BYE"
    message: str
    target_host: str
    target_port: int
    sip_call_id: str
    media_call_id: str

    @property
    def ends_an_answered_leg(self) -> bool:
        return self.method == "BYE"


@dataclass(frozen=True, slots=True)
class LegHangupPrepared:
    """A leg's current `PreparedHangup`, stored as soon as it is known (the INVITE left, the
    200 OK arrived), so that an engine that dies leaves no call nobody can end."""

    role: LegRole
    hangup: PreparedHangup


@dataclass(frozen=True, slots=True)
class LegRecorded:
    """The leg's call record, once it ended (exactly once per dialled leg)."""

    record: CallRecord


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The request moved to `state`; moves follow `request_state.check_transition`."""

    state: RequestState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OwnerBusyUntil:
    """The owner's phone answered busy: no other callback of theirs is claimed before `until`."""

    until: datetime


StoreWrite = (
    LegDialling | LegAnsweredAt | LegHangupPrepared | LegRecorded | OwnerBusyUntil | StateChanged
)
