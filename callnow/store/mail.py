"""The mail outbox: owner notices written with what they report, claimed and sent later.

Like the webhook outbox (`callnow.store.webhooks`), a notice row is written in the same
transaction as the request history row it reports, so a state change and its e-mail are committed
(or lost) together. Both ways history is written enqueue by themselves: the ORM listener below, and
`enqueue_for_history` called by `requests._write_history` for rows inserted with plain Core.

Sending (`callnow.notify.sender`): `due_owners` → `claim` (a lease: `next_attempt_at` pushed out
and a claim id written) → SMTP → `mark_sent` (only while the claim is still ours, in one
transaction). A sender killed between the SMTP server's acceptance and `mark_sent` sends again
after the lease with the same Message-ID: at-least-once, idempotent by Message-ID.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    and_,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapper, Session

from callnow.domain.decision import Outcome
from callnow.domain.notices import Kind, format_kinds, parse_kinds, wanted
from callnow.domain.request_state import RequestState
from callnow.store.models import (
    CallRequest,
    Extension,
    Profile,
    RequestEvent,
    Tenant,
    User,
    utcnow,
)
from callnow.store.notify_models import MailOutbox, NotificationPrefs

ACCEPTED_ON_WEB = "accepted on the web"  # store.web_confirmation.ACCEPTED_REASON
DECLINED_ON_WEB = "declined on the web"  # the owner's own click: nothing to tell them


def new_message_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- preferences


@dataclass(frozen=True)
class Prefs:
    paused: bool
    kinds: frozenset[Kind]


def prefs_of(session: Session, user_id: int) -> Prefs:
    row = session.get(NotificationPrefs, user_id)
    if row is None:
        return Prefs(paused=False, kinds=frozenset(_ALL))
    return Prefs(paused=row.paused, kinds=parse_kinds(row.kinds))


def set_prefs(session: Session, user_id: int, *, paused: bool, kinds: set[Kind]) -> None:
    row = session.get(NotificationPrefs, user_id)
    if row is None:
        row = NotificationPrefs(user_id=user_id)
        session.add(row)
    row.paused = paused
    row.kinds = format_kinds(kinds)
    session.flush()


_ALL = parse_kinds(",".join(k.value for k in Kind))


def _wanted(kind: Kind, paused: bool | None, stored: str | None) -> bool:
    if paused is None:  # no row: every kind, not paused
        return True
    return wanted(kind, paused=paused, chosen=parse_kinds(stored or ""))


# ---------------------------------------------------------------- enqueueing


def enqueue(
    session: Session,
    *,
    user_id: int,
    kind: Kind,
    details: dict[str, Any],
    request_id: int | None = None,
) -> bool:
    """Write a notice for an owner, if they want this kind now; True if written. For other
    parts of CallNow (messages left, bookings, budgets) to call inside their own transaction."""
    prefs = session.get(NotificationPrefs, user_id)
    if prefs is not None and not wanted(kind, paused=prefs.paused, chosen=parse_kinds(prefs.kinds)):
        return False
    _insert(session.connection(), user_id, kind, details, request_id)
    return True


def _insert(
    connection: Connection,
    user_id: int,
    kind: Kind,
    details: dict[str, Any],
    request_id: int | None,
) -> None:
    now = utcnow()
    connection.execute(
        _outbox_insert(),
        {
            "message_id": new_message_id(),
            "user_id": user_id,
            "kind": kind.value,
            "request_id": request_id,
            "details": details,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
        },
    )


@cache  # built once, values as parameters: the engine writes one for each call the owner missed
def _outbox_insert() -> Insert:
    return insert(cast(Table, MailOutbox.__table__))


def kind_for(state: str, reason: str) -> Kind | None:
    """Which notice a history row may cause, before asking the database anything."""
    if state == RequestState.QUEUED.value and reason != ACCEPTED_ON_WEB:
        # Only if the decision is confirm on the web, or the request is booked (checked below).
        return Kind.AWAITING
    if state == RequestState.OWNER_UNREACHABLE.value:
        return Kind.MISSED
    if state == RequestState.OWNER_DECLINED.value and reason != DECLINED_ON_WEB:
        return Kind.DECLINED
    if state == RequestState.REJECTED.value:
        return Kind.DECLINED
    return None


@cache  # built once: this runs for every request placed
def _request_query() -> Any:
    return (
        select(
            CallRequest.decision,
            CallRequest.token,
            CallRequest.caller_name,
            CallRequest.number_e164,
            CallRequest.created_at,
            CallRequest.scheduled_for,
            Profile.callnow_id,
            func.coalesce(Profile.timezone, Tenant.timezone).label("timezone"),
            Extension.owner_user_id,
            NotificationPrefs.paused,
            NotificationPrefs.kinds,
        )
        .select_from(CallRequest)
        .join(Profile, Profile.id == CallRequest.profile_id)
        .join(Extension, Extension.id == Profile.extension_id)
        .join(Tenant, Tenant.id == Extension.tenant_id)
        .outerjoin(NotificationPrefs, NotificationPrefs.user_id == Extension.owner_user_id)
        .where(CallRequest.id == bindparam("request_id"))
    )


def enqueue_for_history(
    connection: Connection,
    row: dict[str, Any],
    *,
    known: tuple[str, datetime | None] | None = None,
) -> bool:
    """The notice (if any) for one history row with request_id, state and reason. `known`: the
    request's decision and booked slot, when the caller knows them: a request that waits neither
    for the owner's confirmation on the web nor for a booked slot then costs no query."""
    kind = kind_for(row["state"], row.get("reason") or "")
    if kind is None:
        return False
    if kind is Kind.AWAITING and known is not None:
        decision, scheduled_for = known
        if decision != Outcome.CONFIRM_ON_WEB.value and scheduled_for is None:
            return False
    found = (
        connection.execute(_request_query(), {"request_id": row["request_id"]}).mappings().first()
    )
    if found is None or found["owner_user_id"] is None:
        return False
    booked_for = found["scheduled_for"]
    if kind is Kind.AWAITING and booked_for is not None:
        kind = Kind.BOOKING  # a new booking: the owner hears when it will be dialled
    elif kind is Kind.AWAITING and found["decision"] != Outcome.CONFIRM_ON_WEB.value:
        return False
    if not _wanted(kind, found["paused"], found["kinds"]):
        return False
    created = found["created_at"]
    details = {
        "token": found["token"],
        "callnow_id": found["callnow_id"],
        "name": found["caller_name"] or "",
        "number": found["number_e164"],
        "requested_at": created.isoformat() if isinstance(created, datetime) else str(created),
        "state": row["state"],
        "reason": (row.get("reason") or "")[:200],
    }
    if booked_for is not None:
        # The slot, and the page's clock it was booked on: the mail names both.
        details["scheduled_for"] = booked_for.astimezone(UTC).isoformat()
        details["timezone"] = found["timezone"]
    _insert(connection, found["owner_user_id"], kind, details, row["request_id"])
    return True


@event.listens_for(RequestEvent, "after_insert")
def _on_request_event(_mapper: Mapper[Any], connection: Connection, target: RequestEvent) -> None:
    # A request starts waiting only when it is recorded (`_write_history`); a `queued` row
    # written here is a note on a request already known (accepted on the web, a cancel asked).
    if target.state == RequestState.QUEUED.value:
        return
    enqueue_for_history(
        connection,
        {"request_id": target.request_id, "state": target.state, "reason": target.reason},
    )


def has_notice_since(session: Session, user_id: int, kind: Kind, since: datetime) -> bool:
    """Whether this owner already has a notice of `kind` written since `since`."""
    query = select(MailOutbox.id).where(
        MailOutbox.user_id == user_id,
        MailOutbox.kind == kind.value,
        MailOutbox.created_at >= since,
    )
    return session.scalar(query.limit(1)) is not None


# ---------------------------------------------------------------- the sender's side


@dataclass(frozen=True)
class Notice:
    id: int
    message_id: str
    user_id: int
    email: str
    kind: Kind
    details: dict[str, Any]
    attempts: int
    created_at: datetime
    request_id: int | None = None
    # The owner's language: the mail is written in it.
    language: str = "en"


def _pending() -> Any:
    return and_(MailOutbox.sent_at.is_(None), MailOutbox.gave_up_at.is_(None))


def due_owners(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Owners with at least one notice whose time has come."""
    query = (
        select(MailOutbox.user_id)
        .where(_pending(), MailOutbox.next_attempt_at <= now)
        .group_by(MailOutbox.user_id)
        .order_by(func.min(MailOutbox.next_attempt_at))
        .limit(limit)
    )
    return list(session.scalars(query))


def due_of(session: Session, user_id: int, now: datetime, limit: int = 500) -> list[Notice]:
    query = (
        select(MailOutbox, User.email, User.language)
        .join(User, User.id == MailOutbox.user_id)
        .where(_pending(), MailOutbox.user_id == user_id, MailOutbox.next_attempt_at <= now)
        .order_by(MailOutbox.id)
        .limit(limit)
    )
    return [
        Notice(
            id=m.id,
            message_id=m.message_id,
            user_id=m.user_id,
            email=email,
            kind=Kind(m.kind),
            details=dict(m.details or {}),
            attempts=m.attempts,
            created_at=m.created_at,
            request_id=m.request_id,
            language=language or "en",
        )
        for m, email, language in session.execute(query)
    ]


@dataclass(frozen=True)
class Recent:
    mails: int  # separate mails (a digest counts once) sent to the owner within the window
    last_sent_at: datetime | None


def recent_mails(session: Session, user_id: int, since: datetime) -> Recent:
    sent = and_(MailOutbox.user_id == user_id, MailOutbox.sent_at >= since)
    mails = session.scalar(
        select(
            func.count(func.distinct(func.coalesce(MailOutbox.sent_as, MailOutbox.message_id)))
        ).where(sent, MailOutbox.kind != Kind.PASSWORD_RESET.value)
    )
    last = session.scalar(select(func.max(MailOutbox.sent_at)).where(sent))
    return Recent(mails=int(mails or 0), last_sent_at=last)


def no_longer_waiting(session: Session, notices: list[Notice]) -> list[Notice]:
    """`awaiting` notices whose request was answered, cancelled or expired before they went
    out: their links would do nothing, and the owner hears of the outcome if it is news."""
    ids = {n.request_id for n in notices if n.kind is Kind.AWAITING and n.request_id}
    if not ids:
        return []
    waiting = set(
        session.scalars(
            select(CallRequest.id).where(
                CallRequest.id.in_(ids),
                CallRequest.state == RequestState.QUEUED.value,
                CallRequest.decision == Outcome.CONFIRM_ON_WEB.value,
            )
        )
    )
    return [n for n in notices if n.kind is Kind.AWAITING and n.request_id not in waiting]


def drop(session: Session, ids: list[int], now: datetime, why: str) -> None:
    """Give up notices that became pointless before they were sent (kept, with the reason)."""
    session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), _pending())
        .values(gave_up_at=now, last_error=why[:300])
        .execution_options(synchronize_session=False)
    )


def claim(session: Session, ids: list[int], now: datetime, lease: timedelta) -> str | None:
    """Take these notices for `lease`, all or none, so two senders never send the same one at
    once; returns the claim id. A sender that dies leaves them due again when the lease ends."""
    claim_id = uuid.uuid4().hex
    result = session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), _pending(), MailOutbox.next_attempt_at <= now)
        .values(next_attempt_at=now + lease, claim=claim_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # type: ignore[attr-defined]  # an UPDATE's CursorResult
        session.rollback()
        return None
    return claim_id


def mark_sent(
    session: Session, ids: list[int], claim_id: str, now: datetime, *, sent_as: str | None
) -> int:
    """Record the SMTP server's acceptance. A password reset's token leaves the row with it: only
    its hash stays at rest."""
    values: dict[str, Any] = {"sent_at": now, "sent_as": sent_as, "last_error": ""}
    result = session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), MailOutbox.claim == claim_id, _pending())
        .values(attempts=MailOutbox.attempts + 1, **values)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), MailOutbox.kind == Kind.PASSWORD_RESET.value)
        .values(details={})
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    ids: list[int],
    claim_id: str,
    *,
    error: str,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    """One more failed attempt; `retry_at` None gives up."""
    values: dict[str, Any] = {"last_error": error[:300], "claim": None}
    if retry_at is None:
        values["gave_up_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), MailOutbox.claim == claim_id, _pending())
        .values(attempts=MailOutbox.attempts + 1, **values)
        .execution_options(synchronize_session=False)
    )


def outbox_of(session: Session, user_id: int | None = None) -> list[MailOutbox]:
    """Rows for tests and the admin, oldest first."""
    query = select(MailOutbox).order_by(MailOutbox.id)
    if user_id is not None:
        query = query.where(MailOutbox.user_id == user_id)
    return list(session.scalars(query))
