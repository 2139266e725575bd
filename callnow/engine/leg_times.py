"""The engine's stopwatch for the legs of one callback.

The flow is clock-free, so the engine notes when each leg was dialled, rang, was answered and
ended, and turns that into a `CallRecord` when the flow says `RecordLeg`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callnow.domain.calls import (
    CallRecord,
    FailureCause,
    LegAnsweredAt,
    LegRole,
    build_call_record,
)
from callnow.domain.flow import (
    Event,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRinging,
    OwnerDiverted,
)


@dataclass
class LegTimes:
    destination: str
    started_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None


class LegStopwatch:
    def __init__(self, request_ref: str) -> None:
        self.request_ref = request_ref
        self._legs: dict[LegRole, LegTimes] = {}

    def dialled(self, role: LegRole, destination: str, at: datetime) -> None:
        self._legs[role] = LegTimes(destination, started_at=at)

    def dialled_roles(self) -> set[LegRole]:
        return set(self._legs)

    def ended(self, role: LegRole, at: datetime) -> None:
        leg = self._legs.get(role)
        if leg is not None and leg.ended_at is None:
            leg.ended_at = at

    def observe(self, event: Event, at: datetime) -> LegAnsweredAt | None:
        """Note the time of a telephony event; the first report of each kind counts, and
        nothing counts once the leg has ended. Returns the answer it noted, if the event was
        the leg's first answer: that is a fact to store at once."""
        match event:
            case (
                LegRinging(role=role)
                | LegAnswered(role=role)
                | LegFailed(role=role)
                | LegEnded(role=role)
            ):
                leg = self._legs.get(role)
            case OwnerDiverted():
                leg = self._legs.get(LegRole.OWNER)
            case _:
                return None
        if leg is None or leg.ended_at is not None:
            return None
        if isinstance(event, LegRinging) and leg.ringing_at is None:
            leg.ringing_at = at
        elif isinstance(event, LegAnswered):
            return self.answered(role, at)
        elif isinstance(event, LegFailed | LegEnded | OwnerDiverted):
            leg.ended_at = at
            if isinstance(event, OwnerDiverted):
                # A voicemail box's 200 OK is no answer (see the flow), even if it was noted.
                leg.answered_at = None
        return None

    def answered(self, role: LegRole, at: datetime) -> LegAnsweredAt | None:
        """Note the leg's answer (its 200 OK arrived): the first one counts, none once the leg
        has ended. Returns the answer to store at once, or None if there is nothing new."""
        leg = self._legs.get(role)
        if leg is None or leg.ended_at is not None or leg.answered_at is not None:
            return None
        leg.answered_at = at
        return LegAnsweredAt(role, _not_before(at, leg.started_at) or at)

    def record(
        self,
        role: LegRole,
        now: datetime,
        failure_cause: FailureCause | None,
        sip_code: int | None,
    ) -> CallRecord | None:
        """The leg's call record, or None for a leg the engine never dialled."""
        leg = self._legs.get(role)
        if leg is None:
            return None
        # A wall clock stepping backwards must not cost us the record: keep the times ordered.
        ringing = _not_before(leg.ringing_at, leg.started_at)
        answered = _not_before(leg.answered_at, leg.started_at)
        observed = [t for t in (leg.started_at, ringing, answered) if t is not None]
        ended = max([leg.ended_at or now, *observed])
        return build_call_record(
            request_ref=self.request_ref,
            role=role,
            destination=leg.destination,
            started_at=leg.started_at,
            ringing_at=ringing,
            answered_at=answered,
            ended_at=ended,
            sip_code=sip_code,
            failure_cause=failure_cause,
        )


def _not_before(moment: datetime | None, floor: datetime) -> datetime | None:
    return None if moment is None else max(moment, floor)
