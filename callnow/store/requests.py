"""Callback requests and their append-only history."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from callnow.domain.request_state import (
    TERMINAL,
    IllegalTransition,
    RequestState,
    check_transition,
    states_before,
)
from callnow.store import mail, webhooks
from callnow.store.models import (
    CallRequest,
    DoNotCall,
    Extension,
    Profile,
    RequestEvent,
    UtcDateTime,
    utcnow,
)
from callnow.store.prepared import Prepared

# 32 random bytes: 256 bits, far past guessing, URL-safe.
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def record_new(
    session: Session,
    *,
    profile: Profile,
    caller_name: str | None,
    number_typed: str,
    number_e164: str,
    source_address: str,
    user_agent: str,
    channel: str,
    decision: str,
    reason: str,
    final_state: RequestState,
    now: datetime | None = None,
    api_key_id: int | None = None,
    idempotency_key: str | None = None,
    scheduled_for: datetime | None = None,
) -> CallRequest:
    """Store a request as received and move it at once to rejected or queued, with history.

    The row goes in as one plain INSERT (every column given), and the caller gets it back as a
    persistent `CallRequest` built from those values, without the ORM's flush, which cost more
    than the INSERT on every form post. Its two history rows go in as one plain INSERT too, with
    their webhook deliveries and notices. `request.events` loads from the database when first
    read, and `request.profile` from the session it was loaded in.
    """
    now = now or utcnow()
    check_transition(RequestState.RECEIVED, final_state)
    values: dict[str, Any] = {
        "token": new_token(),
        "profile_id": profile.id,
        "caller_name": caller_name,
        "number_typed": number_typed[:40],
        "number_e164": number_e164,
        "source_address": source_address[:45],
        "user_agent": user_agent[:256],
        "channel": channel,
        "created_at": now,
        "state": final_state.value,
        "decision": decision,
        "reason": reason,
        "api_key_id": api_key_id,
        "idempotency_key": idempotency_key,
        "claimed_by": None,
        "lease_expires_at": None,
        "claim_count": 0,
        "cancel_requested_at": None,
        "reserved_minor": None,
        "message": None,
        "message_at": None,
        "scheduled_for": scheduled_for,
    }
    session.flush()  # anything pending goes first, as the ORM's own flush would have sent it
    request_id = _request_insert(tuple(values)).run(session.connection(), values).scalar_one()
    request = CallRequest(id=request_id, **values)
    make_transient_to_detached(request)  # as if loaded: what was given is what is stored
    session.add(request)
    _write_history(
        session,
        [
            {"at": now, "state": RequestState.RECEIVED.value, "reason": channel},
            {"at": now, "state": final_state.value, "reason": reason[:200]},
        ],
        request_id=request_id,
        known=(decision, scheduled_for),
    )
    return request


@cache
def _request_insert(columns: tuple[str, ...]) -> Prepared:
    requests = cast(Table, CallRequest.__table__)
    given = {column: bindparam(column, type_=requests.c[column].type) for column in columns}
    return Prepared(insert(requests).values(given).returning(requests.c.id))


def move(
    request: CallRequest,
    new_state: RequestState,
    reason: str = "",
    *,
    now: datetime | None = None,
    details: dict | None = None,
) -> None:
    """Change state only along the domain's allowed moves, and remember it."""
    check_transition(RequestState(request.state), new_state)
    request.state = new_state.value
    append_event(
        request,
        RequestEvent(
            at=now or utcnow(), state=new_state.value, reason=reason[:200], details=details
        ),
    )


@cache
def _move_statement(free_lease: bool) -> Update:
    requests = cast(Table, CallRequest.__table__)
    values: dict[str, Any] = {"state": bindparam("new_state")}
    if free_lease:
        values["lease_expires_at"] = None
    return (
        update(requests)
        .where(
            requests.c.id == bindparam("request_id"),
            requests.c.state.in_(bindparam("from_states", expanding=True)),
        )
        .values(values)
    )


def move_by_id(
    session: Session,
    request_id: int,
    new_state: RequestState,
    reason: str = "",
    *,
    now: datetime,
    free_lease: bool = False,
) -> None:
    """`move` for a request that is not loaded: one conditional UPDATE and the history row, in
    plain Core, with the row's webhook deliveries.

    The engine moves each request through several states, each in a short transaction of its
    own; reading the row first cost a query and the ORM's loading on every step, and the ORM's
    flush of the history row cost more than its INSERT. The UPDATE only matches a row whose
    state may move to `new_state`, so a move that the domain forbids (or a request changed
    meanwhile by someone else) raises as `move` would, and writes nothing.
    """
    result = session.connection().execute(
        _move_statement(free_lease),
        {
            "request_id": request_id,
            "new_state": new_state.value,
            "from_states": sorted(state.value for state in states_before(new_state)),
        },
    )
    if result.rowcount != 1:
        current = session.scalar(select(CallRequest.state).where(CallRequest.id == request_id))
        if current is None:
            raise LookupError(f"no request {request_id}")
        check_transition(RequestState(current), new_state)
        # Allowed from what is stored now: it changed between our UPDATE and this read.
        raise IllegalTransition(f"request {request_id} changed while moving to {new_state}")
    _write_history(
        session,
        [{"at": now, "state": new_state.value, "reason": reason[:200]}],
        request_id=request_id,
    )


def _write_history(
    session: Session,
    rows: list[dict[str, Any]],
    *,
    request_id: int,
    known: tuple[str, datetime | None] | None = None,
) -> None:
    """History rows of one request (each with at, state and reason), in one INSERT, and their
    webhook deliveries and notices: the ORM's listeners do not see rows written this way.
    `known`: the request's decision and booked slot, when the caller knows them (the notices
    then need not read them back)."""
    connection = session.connection()
    for row in rows:
        row["request_id"] = request_id
    # Each row is told by its state: then the rows go in as one statement, returned in any
    # order (the database's order is kept only row by row, one statement each).
    by_state = len({row["state"] for row in rows}) == len(rows)
    inserted: Sequence[tuple[Any, ...]]
    if by_state:
        given = {f"{column}_{i}": row[column] for i, row in enumerate(rows) for column in _HISTORY}
        inserted = _history_rows_insert(len(rows)).run(connection, given).all()
    else:
        inserted = connection.execute(_history_insert(), rows).all()
    ids = {state: event_id for event_id, state in inserted} if by_state else {}
    for i, row in enumerate(rows):
        row["id"] = ids[row["state"]] if by_state else inserted[i][0]
        webhooks.enqueue_inserted(connection, row)
        mail.enqueue_for_history(connection, row, known=known)


_HISTORY = ("request_id", "at", "state", "reason")  # the columns a history row is given


@cache
def _history_rows_insert(count: int) -> Prepared:
    """`count` history rows as one INSERT of that many rows, returned in any order."""
    events = cast(Table, RequestEvent.__table__)
    rows = [
        {column: bindparam(f"{column}_{i}", type_=events.c[column].type) for column in _HISTORY}
        for i in range(count)
    ]
    return Prepared(insert(events).values(rows).returning(events.c.id, events.c.state))


@cache
def _history_insert() -> Insert:
    """History rows returned in the order given (SQLAlchemy keeps it, row by row if needed)."""
    events = cast(Table, RequestEvent.__table__)
    columns = events.c.id, events.c.state
    return insert(events).returning(*columns, sort_by_parameter_order=True)


def append_event(request: CallRequest, event: RequestEvent) -> None:
    """Add a history row without loading the request's whole history first.

    Appending to an unloaded `events` collection would SELECT every earlier event; the engine
    moves each request through several states, each in its own short transaction.
    """
    state = inspect(request)
    if state.session is not None and state.has_identity and "events" in state.unloaded:
        event.request_id = request.id
        state.session.add(event)
    else:
        request.events.append(event)


def by_token(session: Session, token: str) -> CallRequest | None:
    if not token or len(token) > 64:
        return None
    query = (
        select(CallRequest)
        .where(CallRequest.token == token)
        .options(selectinload(CallRequest.events))
    )
    return session.scalars(query).first()


@dataclass(frozen=True, slots=True)
class NumberStanding:
    """What is already known about a number when a request for it arrives at a profile."""

    do_not_call: bool
    # The newest request for this number on this profile that has not ended yet.
    open_request_id: int | None
    # The owner declined this number at or after the time asked about.
    declined_since: bool


@cache
def _standing_query() -> Prepared:
    e164: BindParameter[Any]
    profile_id: BindParameter[Any]
    e164, profile_id = bindparam("e164"), bindparam("profile_id")
    since = bindparam("since", type_=UtcDateTime)
    listed = exists().where(DoNotCall.e164 == e164)
    open_request = (
        select(func.max(CallRequest.id))
        .where(
            CallRequest.profile_id == profile_id,
            CallRequest.number_e164 == e164,
            # The states one by one, not as a list the driver's SQL would expand on each run.
            CallRequest.state.not_in([literal(state.value) for state in TERMINAL]),
        )
        .scalar_subquery()
    )
    declined = exists().where(
        RequestEvent.request_id == CallRequest.id,
        CallRequest.profile_id == profile_id,
        CallRequest.number_e164 == e164,
        RequestEvent.state == RequestState.OWNER_DECLINED.value,
        RequestEvent.at >= since,
    )
    return Prepared(
        select(
            listed.label("listed"), open_request.label("open_request"), declined.label("declined")
        )
    )


def standing_of(session: Session, profile_id: int, e164: str, since: datetime) -> NumberStanding:
    """The do-not-call list, an open request and a recent decline, in one query: each new
    request asks all three, and each query of its own was a round trip to the database."""
    listed, open_request_id, declined = (
        _standing_query()
        .run(session.connection(), {"e164": e164, "profile_id": profile_id, "since": since})
        .one()
    )
    return NumberStanding(bool(listed), open_request_id, bool(declined))


# Each query stays bounded however many are asked for (SQLite caps a statement's parameters).
IDS_PER_QUERY = 500


def states_of(
    session: Session, request_ids: list[int]
) -> dict[int, tuple[str, str, datetime | None]]:
    """The state and reason of each of `request_ids` that exists, and until when its owner is
    held after a busy phone (if ever), in as few queries as fit."""
    found: dict[int, tuple[str, str, datetime | None]] = {}
    for start in range(0, len(request_ids), IDS_PER_QUERY):
        chunk = request_ids[start : start + IDS_PER_QUERY]
        for request_id, state, reason, busy_until in session.execute(
            _states_query(), {"ids": chunk}
        ):
            found[request_id] = (state, reason or "", busy_until)
    return found


@cache
def _states_query() -> Select[int, str, str, datetime | None]:
    return (
        select(CallRequest.id, CallRequest.state, CallRequest.reason, Extension.busy_until)
        .join(Profile, CallRequest.profile_id == Profile.id)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(CallRequest.id.in_(bindparam("ids", expanding=True)))
    )


def by_idempotency_key(session: Session, api_key_id: int, key: str) -> CallRequest | None:
    query = select(CallRequest).where(
        CallRequest.api_key_id == api_key_id, CallRequest.idempotency_key == key
    )
    return session.scalars(query).first()


def recent_for_profiles(
    session: Session, profile_ids: list[int], limit: int = 50, offset: int = 0
) -> list[CallRequest]:
    if not profile_ids:
        return []
    query = (
        select(CallRequest)
        .where(CallRequest.profile_id.in_(profile_ids))
        .order_by(CallRequest.created_at.desc(), CallRequest.id.desc())
        .limit(limit)
        .offset(offset)
        .options(selectinload(CallRequest.events))
    )
    return list(session.scalars(query))
