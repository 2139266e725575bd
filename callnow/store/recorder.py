"""The engine's recorder, backed by the database: call legs and request states.

Each `write` is one short transaction in a worker thread, so the engine's event loop is never
blocked by the database and the facts are durable, together, the moment it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callnow.domain.calls import (
    CallRecord,
    Disposition,
    LegDialling,
    LegRecorded,
    StateChanged,
    StoreWrite,
)
from callnow.domain.request_state import is_terminal
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest
from callnow.store.requests import move

log = logging.getLogger(__name__)
REF_PREFIX = "req-"


def request_ref(request_id: int) -> str:
    return f"{REF_PREFIX}{request_id}"


def request_id_of(ref: str) -> int:
    if not ref.startswith(REF_PREFIX) or not ref[len(REF_PREFIX) :].isdigit():
        raise ValueError(f"not a request ref: {ref!r}")
    return int(ref[len(REF_PREFIX) :])


class StoreRecorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        on_answered_leg_recorded: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        # Only an answered leg can cost money: billing hears of those alone.
        self._on_answered_leg_recorded = on_answered_leg_recorded

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        answered = await asyncio.to_thread(self._write, request_id_of(request_ref), writes)
        if self._on_answered_leg_recorded is not None:
            for leg_id in answered:
                self._on_answered_leg_recorded(leg_id)

    def _write(self, request_id: int, writes: Sequence[StoreWrite]) -> list[int]:
        answered: list[int] = []
        with transaction(self._sessions) as session:
            for write in writes:
                match write:
                    case LegDialling(role=role, destination=destination, at=at):
                        session.add(
                            CallLeg(
                                request_id=request_id,
                                role=role.value,
                                destination=destination,
                                started_at=at,
                            )
                        )
                        # The unique (request, role) pair raises here if this leg was ever
                        # dialled before, and the whole unit is rolled back.
                        session.flush()
                    case LegRecorded(record=record):
                        leg_id = _complete_leg(session, request_id, record)
                        if leg_id is not None and record.disposition is Disposition.ANSWERED:
                            answered.append(leg_id)
                    case StateChanged(state=state, reason=reason, at=at):
                        request = session.get(CallRequest, request_id)
                        if request is None:
                            raise LookupError(f"no request {request_id}")
                        move(request, state, reason, now=at)
                        if is_terminal(state):
                            request.lease_expires_at = None  # done: nothing left to take over
        return answered


def _complete_leg(session: Session, request_id: int, record: CallRecord) -> int | None:
    leg = session.scalars(
        select(CallLeg).where(CallLeg.request_id == request_id, CallLeg.role == record.role.value)
    ).first()
    if leg is None:
        log.error("call record for %s %s without its leg row", record.request_ref, record.role)
        return None
    leg.ringing_at = record.ringing_at
    leg.answered_at = record.answered_at
    leg.ended_at = record.ended_at
    leg.sip_code = record.sip_code
    leg.disposition = record.disposition.value
    leg.billable_seconds = record.billable_seconds
    return leg.id
