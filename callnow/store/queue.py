"""The durable queue of callback requests: claims with leases, and recovery after a crash.

A request waits as `queued` (a booked one also until its slot, `scheduled_for`). An engine
claims it by writing its id and a lease expiry; while the call runs the engine renews the
lease. On PostgreSQL the claim is `SELECT … FOR UPDATE SKIP LOCKED`, so several engines share
one database without taking the same request; on SQLite (one process) the same statements
run without the locking clause.

An owner whose phone answered busy is held (`extensions.busy_until`, written by the engine with
the callback's final state): until then none of their requests is claimed, and they stay
queued without keeping other owners' requests from being claimed.

Crash rule: a leg row is written before every INVITE. A request whose lease expired is taken
over only if no leg was ever written for it; otherwise a call may already have been placed and
it ends as `interrupted`, never dialled again.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    CTE,
    CompoundSelect,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    func,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased, joinedload, undefer

from callnow.domain import request_state
from callnow.domain.acceptance import CLAIMABLE_DECISIONS
from callnow.domain.request_state import RequestState
from callnow.store.models import CallLeg, CallRequest, Extension, Profile, UtcDateTime
from callnow.store.requests import move

# On PostgreSQL the web NOTIFYs this channel when it queued work, and engines LISTEN on it.
NOTIFY_CHANNEL = "callnow_queue"
IN_CALL = tuple(state.value for state in request_state.IN_CALL)


# The claim's statements are built once, with the time and ids as parameters: building and
# keying a statement each time cost more CPU than running it.
_NOW = bindparam("now", type_=UtcDateTime)


def _claimable() -> tuple[Any, ...]:
    never_dialled = ~exists().where(CallLeg.request_id == CallRequest.id)
    return (
        CallRequest.state == RequestState.QUEUED.value,
        CallRequest.decision.in_(CLAIMABLE_DECISIONS),
        or_(CallRequest.lease_expires_at.is_(None), CallRequest.lease_expires_at < _NOW),
        # A booked request waits for its slot.
        or_(CallRequest.scheduled_for.is_(None), CallRequest.scheduled_for <= _NOW),
        never_dialled,
    )


def _in_progress(request: Any) -> Any:
    """A callback in progress, or claimed and about to start."""
    return or_(
        request.state.in_(IN_CALL),
        (request.state == RequestState.QUEUED.value) & (request.lease_expires_at > _NOW),
    )


def _oldest_claimable(how_many: int, name: str, *also: Any) -> CTE:
    return (
        select(CallRequest.id, Profile.extension_id, Extension.tenant_id)
        .join(Profile, CallRequest.profile_id == Profile.id)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(
            *_claimable(),
            # In the query, not left to the room check after it: a held owner's backlog must
            # not take the places of other owners' requests among the candidates.
            or_(Extension.busy_until.is_(None), Extension.busy_until <= _NOW),
            *also,
        )
        .order_by(CallRequest.id)
        .limit(how_many)
        .cte(name)
    )


def _with_busy(candidates: CTE) -> CompoundSelect:
    """The candidates (rows with an id), and the callbacks in progress or claimed and about to
    start per extension of their tenants (rows with a count): one round trip, as a claim lies
    on every request's way from the form to the owner's phone."""
    busy = (
        select(null(), Profile.extension_id, Extension.tenant_id, func.count())
        .select_from(CallRequest)
        .join(Profile, CallRequest.profile_id == Profile.id)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(Extension.tenant_id.in_(select(candidates.c.tenant_id)), _in_progress(CallRequest))
        .group_by(Profile.extension_id, Extension.tenant_id)
    )
    return union_all(select(candidates, null()), busy)


@cache
def _candidates_and_busy(how_many: int) -> CompoundSelect:
    """The oldest claimable requests, with what is in progress around them."""
    return _with_busy(_oldest_claimable(how_many, "candidates"))


@cache
def _candidates_with_room_and_busy(how_many: int) -> CompoundSelect:
    """The oldest claimable requests of owners and tenants with room for another call, with what
    is in progress around them: asked only when the oldest all wait for calls to end (see
    `claim_batch`)."""
    busy_request, busy_profile, busy_extension = (
        aliased(CallRequest),
        aliased(Profile),
        aliased(Extension),
    )
    in_progress = (
        select(busy_profile.extension_id, busy_extension.tenant_id)
        .join_from(busy_request, busy_profile, busy_request.profile_id == busy_profile.id)
        .join(busy_extension, busy_profile.extension_id == busy_extension.id)
        .where(_in_progress(busy_request))
        .cte("in_progress")
    )
    full_extensions = (
        select(in_progress.c.extension_id)
        .group_by(in_progress.c.extension_id)
        .having(func.count() >= bindparam("max_per_extension"))
    )
    full_tenants = (
        select(in_progress.c.tenant_id)
        .group_by(in_progress.c.tenant_id)
        .having(func.count() >= bindparam("max_per_tenant"))
    )
    room = (
        Profile.extension_id.not_in(full_extensions),
        Extension.tenant_id.not_in(full_tenants),
    )
    return _with_busy(_oldest_claimable(how_many, "candidates", *room))


@cache
def _take(postgres: bool) -> Select[Any]:
    query = (
        select(CallRequest)
        .where(CallRequest.id.in_(bindparam("ids", expanding=True)), *_claimable())
        .order_by(CallRequest.id)
        # The dispatcher reads the owner's extension and tenant next, the owner's language (what
        # their phone says) and whether the number is on the do-not-call list: one query, not
        # six.
        .options(
            undefer(CallRequest.number_on_do_not_call),
            joinedload(CallRequest.profile, innerjoin=True)
            .joinedload(Profile.extension, innerjoin=True)
            .joinedload(Extension.tenant, innerjoin=True),
            joinedload(CallRequest.profile, innerjoin=True)
            .joinedload(Profile.extension, innerjoin=True)
            .joinedload(Extension.owner),
        )
    )
    if postgres:
        # Lock just these rows; another engine skips them instead of waiting (and a row it
        # holds is skipped here: that owner's room is then simply not used this round).
        query = query.with_for_update(skip_locked=True, of=CallRequest)
    return query


class _Rows:
    """Candidates and the callbacks in progress per extension, as one or two queries gave them
    (rows the two share are counted once)."""

    def __init__(self) -> None:
        self.candidates: set[tuple[int, int, int]] = set()
        self.busy: dict[tuple[int, int], int] = {}  # (extension, tenant) -> in progress

    def read(self, result: Any) -> int:
        """Take in one query's rows; returns how many candidates it gave."""
        found = 0
        for request_id, extension_id, tenant_id, busy in result:
            if request_id is not None:
                self.candidates.add((request_id, extension_id, tenant_id))
                found += 1
            else:
                self.busy[(extension_id, tenant_id)] = busy
        return found

    def choose(
        self, limit: int, max_per_extension: int, max_per_tenant: int
    ) -> tuple[list[int], bool]:
        """Up to `limit` of the oldest candidates whose owner and tenant have room, and whether
        some candidate waits only for room."""
        # Counted by the database, not row by row.
        per_extension: Counter[int] = Counter()
        per_tenant: Counter[int] = Counter()
        for (extension_id, tenant_id), busy in self.busy.items():
            per_extension[extension_id] += busy
            per_tenant[tenant_id] += busy
        chosen: list[int] = []
        held_back = False
        for request_id, extension_id, tenant_id in sorted(self.candidates):  # oldest first
            if len(chosen) == limit:
                break
            if (
                per_extension[extension_id] >= max_per_extension
                or per_tenant[tenant_id] >= max_per_tenant
            ):
                held_back = True
                continue
            per_extension[extension_id] += 1
            per_tenant[tenant_id] += 1
            chosen.append(request_id)
        return chosen, held_back


class Claimed(NamedTuple):
    requests: list[CallRequest]
    # Some request waits only for its owner or tenant to have room: when a call of theirs ends,
    # claim again.
    held_back: bool


def claim_batch(
    session: Session,
    engine_id: str,
    lease_s: float,
    now: datetime,
    *,
    limit: int,
    max_per_extension: int = 1,
    max_per_tenant: int = 1_000,
) -> Claimed:
    """Take up to `limit` of the oldest claimable requests whose owners and tenants have room.

    A backlog is claimed a batch at a time: one round of queries and one commit for many
    requests instead of one each. Each comes with its owner's extension and tenant loaded.
    The leases are set on the objects, not flushed: the session's next flush or commit writes
    them, together with whatever else the caller changes in those rows.
    """
    if limit < 1:
        return Claimed([], held_back=False)
    how_many = max(50, 2 * limit)
    values = {"now": now, "max_per_extension": max_per_extension, "max_per_tenant": max_per_tenant}
    rows = _Rows()
    found = rows.read(session.execute(_candidates_and_busy(how_many), values))
    chosen, held_back = rows.choose(limit, max_per_extension, max_per_tenant)
    if found == how_many and len(chosen) < limit and held_back:
        # The oldest all wait for their owners' or tenants' calls to end, and more are queued
        # behind them: another owner's request there must not wait for those calls too.
        rows.read(session.execute(_candidates_with_room_and_busy(how_many), values))
        chosen, held_back = rows.choose(limit, max_per_extension, max_per_tenant)
    if not chosen:
        return Claimed([], held_back)
    postgres = session.get_bind().dialect.name == "postgresql"
    claimed = list(session.scalars(_take(postgres), {"now": now, "ids": chosen}).unique())
    for request in claimed:
        request.claimed_by = engine_id
        request.lease_expires_at = now + timedelta(seconds=lease_s)
        request.claim_count = (request.claim_count or 0) + 1
    # Not flushed here: the rows are locked (PostgreSQL) or this is the only writer (SQLite), and
    # the caller may write more to them before its next query, in the same UPDATE.
    return Claimed(claimed, held_back)


def mark_owner_busy(session: Session, request_id: int, until: datetime) -> None:
    """Claim no request of the owner of `request_id` before `until`. A later time already set
    stays: a late or replayed write never shortens a hold."""
    session.connection().execute(_owner_busy(), {"busy_request": request_id, "until": until})


@cache
def _owner_busy() -> Update:
    extensions = cast(Table, Extension.__table__)
    owner = (
        select(Profile.extension_id)
        .join(CallRequest, CallRequest.profile_id == Profile.id)
        .where(CallRequest.id == bindparam("busy_request"))
        .scalar_subquery()
    )
    until = bindparam("until", type_=UtcDateTime)
    return (
        update(extensions)
        .where(
            extensions.c.id == owner,
            or_(extensions.c.busy_until.is_(None), extensions.c.busy_until < until),
        )
        .values(busy_until=until)
    )


def renew(
    session: Session, request_ids: list[int], engine_id: str, lease_s: float, now: datetime
) -> int:
    """Extend this engine's leases; returns how many were still ours."""
    if not request_ids:
        return 0
    result = session.execute(
        update(CallRequest)
        .where(CallRequest.id.in_(request_ids), CallRequest.claimed_by == engine_id)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult


def release(session: Session, request_id: int, engine_id: str) -> None:
    session.execute(
        update(CallRequest)
        .where(CallRequest.id == request_id, CallRequest.claimed_by == engine_id)
        .values(lease_expires_at=None)
    )


def unclaim(session: Session, request_id: int, engine_id: str, *, keep_lease: bool) -> None:
    """Give a claim back before its call started, with nothing held on the owner's budget.

    With `keep_lease` (its callback could not start) it is claimed again once the lease runs
    out, so a request that cannot start is not retried in a tight loop; otherwise (the engine
    is stopping) another engine may take it at once. It still counts as a claim, so the next
    one re-prices the call from scratch (see `billing.ledger.reserve`)."""
    freed: dict[str, None] = {"reserved_minor": None}
    if not keep_lease:
        freed |= {"claimed_by": None, "lease_expires_at": None}
    session.execute(
        update(CallRequest)
        .where(CallRequest.id == request_id, CallRequest.claimed_by == engine_id)
        .values(freed)
    )


def interrupt_abandoned(
    session: Session, now: datetime, *, sparing: str | None = None
) -> list[int]:
    """End requests whose engine died after a call may have been placed: never dial again.

    `sparing` is the engine id of the caller when it is running: its own requests are not
    abandoned, even with a lease that ran out (it was starved, or its records are late)."""
    dialled = exists().where(CallLeg.request_id == CallRequest.id)
    query = select(CallRequest).where(
        CallRequest.lease_expires_at.is_not(None),
        CallRequest.lease_expires_at < now,
        or_(
            CallRequest.state.in_(IN_CALL),
            (CallRequest.state == RequestState.QUEUED.value) & dialled,
        ),
    )
    if sparing is not None:
        query = query.where(
            or_(CallRequest.claimed_by.is_(None), CallRequest.claimed_by != sparing)
        )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=CallRequest)
    ended = []
    for request in session.scalars(query):
        move(request, RequestState.INTERRUPTED, "engine lost during the call", now=now)
        request.lease_expires_at = None
        ended.append(request.id)
    session.flush()
    return ended


def unfinished_legs(session: Session, request_id: int) -> list[CallLeg]:
    query = select(CallLeg).where(CallLeg.request_id == request_id, CallLeg.ended_at.is_(None))
    return list(session.scalars(query))


def cancel_requested_among(session: Session, request_ids: list[int]) -> list[int]:
    """Those of `request_ids` whose visitor asked to cancel."""
    query = select(CallRequest.id).where(
        CallRequest.id.in_(request_ids), CallRequest.cancel_requested_at.is_not(None)
    )
    return list(session.scalars(query))


def depth(session: Session, now: datetime) -> tuple[int, float]:
    """Requests waiting to be claimed, and how long the oldest has waited (seconds; 0 if none).

    For the metrics scrape: one aggregate query over the queued requests."""
    count, oldest = session.execute(
        select(func.count(), func.min(CallRequest.created_at))
        .join(Profile, CallRequest.profile_id == Profile.id)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(
            CallRequest.state == RequestState.QUEUED.value,
            # Bookings whose slot has not come are not waiting for an engine, nor are the
            # requests of an owner held after a busy phone (`owners_held` counts those owners).
            or_(CallRequest.scheduled_for.is_(None), CallRequest.scheduled_for <= now),
            or_(Extension.busy_until.is_(None), Extension.busy_until <= now),
        )
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return int(count), max(0.0, (now - oldest).total_seconds())


def owners_held(session: Session, now: datetime) -> int:
    """Owners held after their phone answered busy, whose queued requests wait for that."""
    held = select(func.count()).select_from(Extension).where(Extension.busy_until > now)
    return session.scalar(held) or 0
