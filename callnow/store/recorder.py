"""The engine's recorder, backed by the database: call legs, request states, charges.

Every method runs its own short transaction in a worker thread, so the engine's event loop is
never blocked by the database and each fact is durable the moment the method returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callnow.domain.calls import CallRecord, LegRole
from callnow.domain.request_state import RequestState
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
        on_leg_recorded: Callable[[int], None] | None = None,
        on_state_changed: Callable[[int, RequestState], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_leg_recorded = on_leg_recorded
        self._on_state_changed = on_state_changed

    async def leg_dialling(
        self, request_ref: str, role: LegRole, destination: str, at: datetime
    ) -> None:
        await asyncio.to_thread(
            self._leg_dialling, request_id_of(request_ref), role, destination, at
        )

    def _leg_dialling(self, request_id: int, role: LegRole, destination: str, at: datetime) -> None:
        # The unique (request, role) pair raises here if this leg was ever dialled before.
        with transaction(self._sessions) as session:
            session.add(
                CallLeg(
                    request_id=request_id, role=role.value, destination=destination, started_at=at
                )
            )

    async def record_leg(self, record: CallRecord) -> None:
        leg_id = await asyncio.to_thread(self._record_leg, record)
        if leg_id is not None and self._on_leg_recorded is not None:
            self._on_leg_recorded(leg_id)

    def _record_leg(self, record: CallRecord) -> int | None:
        request_id = request_id_of(record.request_ref)
        with transaction(self._sessions) as session:
            leg = session.scalars(
                select(CallLeg).where(
                    CallLeg.request_id == request_id, CallLeg.role == record.role.value
                )
            ).first()
            if leg is None:
                log.error(
                    "call record for %s %s without its leg row", record.request_ref, record.role
                )
                return None
            leg.ringing_at = record.ringing_at
            leg.answered_at = record.answered_at
            leg.ended_at = record.ended_at
            leg.sip_code = record.sip_code
            leg.disposition = record.disposition.value
            leg.billable_seconds = record.billable_seconds
            return leg.id

    async def request_state_changed(
        self, request_ref: str, state: RequestState, reason: str, at: datetime
    ) -> None:
        request_id = request_id_of(request_ref)
        await asyncio.to_thread(self._state_changed, request_id, state, reason, at)
        if self._on_state_changed is not None:
            self._on_state_changed(request_id, state)

    def _state_changed(
        self, request_id: int, state: RequestState, reason: str, at: datetime
    ) -> None:
        with transaction(self._sessions) as session:
            request = session.get(CallRequest, request_id)
            if request is None:
                raise LookupError(f"no request {request_id}")
            move(request, state, reason, now=at)
