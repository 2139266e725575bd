"""The engine's recorder, backed by the database: call legs and request states.

Each `write` is one short transaction in a worker thread, so the engine's event loop is never
blocked by the database and the facts are durable, together, the moment it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import cache
from typing import cast

from sqlalchemy import Insert, Table, Update, bindparam, delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from callnow.domain.calls import (
    CallRecord,
    Disposition,
    LegAnsweredAt,
    LegDialling,
    LegHangupPrepared,
    LegRecorded,
    OwnerBusyUntil,
    StateChanged,
    StoreWrite,
)
from callnow.domain.request_state import is_terminal
from callnow.store.db import transaction
from callnow.store.models import CallLeg
from callnow.store.queue import mark_owner_busy
from callnow.store.requests import move_by_id

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
                    case LegDialling():
                        write_ahead(session, request_id, write)
                    case LegAnsweredAt(role=role, at=at):
                        session.connection().execute(
                            _leg_answered(),
                            {"leg_request": request_id, "leg_role": role.value, "at": at},
                        )
                    case LegHangupPrepared(role=role, hangup=hangup):
                        session.connection().execute(
                            _hangup_prepared(),
                            {
                                "leg_request": request_id,
                                "leg_role": role.value,
                                "new_sip_call_id": hangup.sip_call_id,
                                "new_media_call_id": hangup.media_call_id,
                                "new_hangup_method": hangup.method,
                                "new_hangup_message": hangup.message,
                                "new_hangup_host": hangup.target_host,
                                "new_hangup_port": hangup.target_port,
                            },
                        )
                    case LegRecorded(record=record):
                        leg_id = _complete_leg(session, request_id, record)
                        if leg_id is not None and record.disposition is Disposition.ANSWERED:
                            answered.append(leg_id)
                    case OwnerBusyUntil(until=until):
                        mark_owner_busy(session, request_id, until)
                    case StateChanged(state=state, reason=reason, at=at):
                        # A final state frees the lease: nothing left for another engine.
                        done = is_terminal(state)
                        move_by_id(session, request_id, state, reason, now=at, free_lease=done)
        return answered


def write_ahead(session: Session, request_id: int, dialling: LegDialling) -> None:
    """The leg's row, before it is dialled. The unique (request, role) pair raises here if this
    leg was ever dialled before, and the caller's whole transaction is rolled back."""
    session.connection().execute(
        _dialling(),
        {
            "request_id": request_id,
            "role": dialling.role.value,
            "destination": dialling.destination,
            "started_at": dialling.at,
        },
    )


def take_back(session: Session, request_id: int, dialling: LegDialling) -> None:
    """Remove a write-ahead row whose leg was provably never dialled (the callback never
    started), so the request may be claimed again instead of ending as interrupted."""
    legs = cast(Table, CallLeg.__table__)
    session.connection().execute(
        delete(legs).where(
            legs.c.request_id == request_id,
            legs.c.role == dialling.role.value,
            legs.c.ended_at.is_(None),
        )
    )


# Plain Core statements, built once: the engine writes these for every call it places.
@cache
def _dialling() -> Insert:
    return insert(cast(Table, CallLeg.__table__)).values(billable_seconds=0)


@cache
def _leg_answered() -> Update:
    legs = cast(Table, CallLeg.__table__)
    # The first answer counts: a replayed or late write never moves it.
    return (
        update(legs)
        .where(
            legs.c.request_id == bindparam("leg_request"),
            legs.c.role == bindparam("leg_role"),
            legs.c.answered_at.is_(None),
        )
        .values(answered_at=bindparam("at"))
    )


@cache
def _hangup_prepared() -> Update:
    legs = cast(Table, CallLeg.__table__)
    columns = (
        "sip_call_id",
        "media_call_id",
        "hangup_method",
        "hangup_message",
        "hangup_host",
        "hangup_port",
    )
    # Only while the leg is up: a late CANCEL must not replace the BYE of an answered leg's
    # record, nor anything be kept for a leg that ended.
    return (
        update(legs)
        .where(
            legs.c.request_id == bindparam("leg_request"),
            legs.c.role == bindparam("leg_role"),
            legs.c.ended_at.is_(None),
        )
        .values({column: bindparam(f"new_{column}") for column in columns})
    )


@cache
def _leg_ended() -> Update:
    legs = cast(Table, CallLeg.__table__)
    ended = ("ringing_at", "answered_at", "ended_at", "sip_code", "disposition", "billable_seconds")
    return (
        update(legs)
        .where(legs.c.request_id == bindparam("leg_request"), legs.c.role == bindparam("leg_role"))
        # A bound name may not be a column's own name in an UPDATE's SET.
        .values({column: bindparam(f"new_{column}") for column in ended})
        .returning(legs.c.id)
    )


def _complete_leg(session: Session, request_id: int, record: CallRecord) -> int | None:
    leg_id = (
        session.connection()
        .execute(
            _leg_ended(),
            {
                "leg_request": request_id,
                "leg_role": record.role.value,
                "new_ringing_at": record.ringing_at,
                "new_answered_at": record.answered_at,
                "new_ended_at": record.ended_at,
                "new_sip_code": record.sip_code,
                "new_disposition": record.disposition.value,
                "new_billable_seconds": record.billable_seconds,
            },
        )
        .scalar()
    )
    if leg_id is None:
        log.error("call record for %s %s without its leg row", record.request_ref, record.role)
    return leg_id
