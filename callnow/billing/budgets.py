"""What an extension may still spend: its own limits and its tenant's, whichever is tighter.

Every limit is in gross minor units (what the owner pays, tax included) and is computed from the
posted charges, never kept as a running total, so it cannot drift from the ledger:
  - daily cap: the cap minus today's charges, "today" in the tenant's time zone;
  - prepaid balance: the balance set at `balance_set_at` minus every charge posted since;
  - credit limit: the limit minus this calendar month's charges (the statement period).
A limit already overspent reads as 0 remaining, never below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from callnow.domain.rating import Budget
from callnow.domain.request_state import IN_CALL, RequestState
from callnow.i18n import gettext as _
from callnow.store.billing_models import BudgetRow, ChargeRow, OwnerLegPriceRow
from callnow.store.models import CallLeg, CallRequest, Extension, Profile, Tenant


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
LimitChange = int | None | _Unchanged


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval of UTC instants: start <= t < end."""

    start: datetime
    end: datetime


def local_day(moment: datetime, zone: ZoneInfo) -> Period:
    return local_days(moment.astimezone(zone).date(), 1, zone)


def local_month(moment: datetime, zone: ZoneInfo) -> Period:
    first = moment.astimezone(zone).date().replace(day=1)
    return month_period(first, zone)


def month_period(first_day: date, zone: ZoneInfo) -> Period:
    following = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return local_days(first_day, (following - first_day).days, zone)


def local_days(first_day: date, days: int, zone: ZoneInfo) -> Period:
    # Midnight to midnight on the wall clock, so a daylight-saving day is 23 or 25 hours long.
    start = datetime.combine(first_day, time(), zone)
    end = datetime.combine(first_day + timedelta(days=days), time(), zone)
    return Period(start.astimezone(UTC), end.astimezone(UTC))


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """A date ("2026-12-01", midnight in `zone`) or an ISO date-time (in `zone` unless it
    carries an offset); ValueError otherwise."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), zone)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def budget_for(
    session: Session, extension_id: int, now: datetime, *, for_reservation: bool = False
) -> Budget:
    """The domain Budget of one extension at `now`: the tighter of its and its tenant's limits.

    `for_reservation`: the caller is about to reserve from this budget in the same transaction.
    On PostgreSQL the extension's and the tenant's budget rows are then locked until it ends,
    so two engines cannot both reserve what remains: the second reads the budget only after
    the first committed its reservation. (SQLite has one writer at a time anyway and ignores
    the lock.) Rows are locked in id order, so two claims can never wait on each other.
    """
    extension = session.get(Extension, extension_id)
    if extension is None:
        raise LookupError(f"no extension {extension_id}")
    tenant = session.get(Tenant, extension.tenant_id)
    assert tenant is not None  # a foreign key guarantees it
    zone = ZoneInfo(tenant.timezone)
    day, month = local_day(now, zone), local_month(now, zone)
    own = shared = None
    rows = _budget_rows(for_reservation)
    for row in session.scalars(rows, {"extension_id": extension_id, "tenant_id": tenant.id}):
        if row.extension_id == extension_id:
            own = row
        else:
            shared = row
    scopes = [
        (row, column_value)
        for row, column_value in (
            (own, (ChargeRow.extension_id, extension_id)),
            (shared, (ChargeRow.tenant_id, tenant.id)),
        )
        if row is not None
    ]
    daily: list[int] = []
    prepaid: list[int] = []
    credit: list[int] = []
    for row, (column, value) in scopes:
        scope = column == value
        # Calls already dispatched hold what they may still cost until their charge is posted.
        held = _reserved(
            session,
            extension_id if column is ChargeRow.extension_id else None,
            tenant.id if column is ChargeRow.tenant_id else None,
            now,
        )
        for cap in (row.daily_cap_minor, row.owner_daily_cap_minor if row is own else None):
            if cap is not None:
                spent = _spent(session, scope, ChargeRow.answered_at, day.start, day.end)
                daily.append(cap - spent - held)
        if row.prepaid_balance_minor is not None and row.balance_set_at is not None:
            spent = _spent(session, scope, ChargeRow.posted_at, row.balance_set_at)
            prepaid.append(row.prepaid_balance_minor - spent - held)
        if row.credit_limit_minor is not None:
            spent = _spent(session, scope, ChargeRow.answered_at, month.start, month.end)
            credit.append(row.credit_limit_minor - spent - held)
    return Budget(
        daily_cap_remaining_minor=_tightest(daily),
        prepaid_balance_minor=_tightest(prepaid),
        credit_remaining_minor=_tightest(credit),
    )


# Built once, with the ids as parameters: every claim asks for its owner's budget.
@cache
def _budget_rows(for_reservation: bool) -> Select[BudgetRow]:
    rows = (
        select(BudgetRow)
        .where(
            or_(
                BudgetRow.extension_id == bindparam("extension_id"),
                BudgetRow.tenant_id == bindparam("tenant_id"),
            )
        )
        .order_by(BudgetRow.id)
    )
    return rows.with_for_update() if for_reservation else rows


# Claimed (queued with a reservation) or under way: the reservation still holds.
_UNFINISHED = tuple(s.value for s in (RequestState.QUEUED, *IN_CALL))


def _reserved(
    session: Session, extension_id: int | None, tenant_id: int | None, now: datetime
) -> int:
    """Reservations still held: calls under way, and ended calls with an answered leg whose
    charge is not posted yet (the visitor's, and the owner's when that call priced it)."""
    owner_leg_priced = (
        select(OwnerLegPriceRow.request_id)
        .where(OwnerLegPriceRow.request_id == CallRequest.id)
        .exists()
    )
    leg_uncharged = (
        select(CallLeg.id)
        .where(
            CallLeg.request_id == CallRequest.id,
            or_(
                CallLeg.role == "requester",
                and_(CallLeg.role == "owner", owner_leg_priced),
            ),
            CallLeg.disposition == "answered",
            ~select(ChargeRow.id).where(ChargeRow.call_leg_id == CallLeg.id).exists(),
        )
        .exists()
    )
    query = (
        select(func.coalesce(func.sum(CallRequest.reserved_minor), 0))
        .join(Profile, CallRequest.profile_id == Profile.id)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(
            CallRequest.reserved_minor.is_not(None),
            or_(CallRequest.state.in_(_UNFINISHED), leg_uncharged),
        )
    )
    if extension_id is not None:
        query = query.where(Extension.id == extension_id)
    if tenant_id is not None:
        query = query.where(Extension.tenant_id == tenant_id)
    return int(session.scalar(query) or 0)


def _tightest(remaining: list[int]) -> int | None:
    return max(0, min(remaining)) if remaining else None


def _spent(session: Session, scope, column, start: datetime, end: datetime | None = None) -> int:
    """Gross minor units charged in scope with start <= column (< end, when given)."""
    query = select(func.coalesce(func.sum(ChargeRow.gross_minor), 0)).where(scope, column >= start)
    if end is not None:
        query = query.where(column < end)
    return int(session.scalar(query) or 0)


def _row(
    session: Session, *, extension_id: int | None = None, tenant_id: int | None = None
) -> BudgetRow | None:
    if extension_id is not None:
        query = select(BudgetRow).where(BudgetRow.extension_id == extension_id)
    else:
        query = select(BudgetRow).where(BudgetRow.tenant_id == tenant_id)
    return session.scalars(query).first()


def budget_row(
    session: Session, *, extension_id: int | None = None, tenant_id: int | None = None
) -> BudgetRow | None:
    """The stored limits of one extension or one tenant, if any were ever set."""
    if (extension_id is None) == (tenant_id is None):
        raise ValueError("name exactly one of extension_id and tenant_id")
    return _row(session, extension_id=extension_id, tenant_id=tenant_id)


def set_budget(
    session: Session,
    now: datetime,
    *,
    extension_id: int | None = None,
    tenant_id: int | None = None,
    daily_cap_minor: LimitChange = UNCHANGED,
    prepaid_balance_minor: LimitChange = UNCHANGED,
    credit_limit_minor: LimitChange = UNCHANGED,
) -> BudgetRow:
    """Change some limits of one extension or tenant; None switches a limit off.

    Setting the prepaid balance states what is left as of `now`; charges posted before `now`
    no longer count against it.
    """
    if (extension_id is None) == (tenant_id is None):
        raise ValueError("name exactly one of extension_id and tenant_id")
    for value in (daily_cap_minor, prepaid_balance_minor, credit_limit_minor):
        if isinstance(value, int) and value < 0:
            raise ValueError("limits are never negative")
    row = _row(session, extension_id=extension_id, tenant_id=tenant_id)
    if row is None:
        row = BudgetRow(extension_id=extension_id, tenant_id=tenant_id)
        session.add(row)
    if not isinstance(daily_cap_minor, _Unchanged):
        row.daily_cap_minor = daily_cap_minor
    if not isinstance(credit_limit_minor, _Unchanged):
        row.credit_limit_minor = credit_limit_minor
    if not isinstance(prepaid_balance_minor, _Unchanged):
        row.prepaid_balance_minor = prepaid_balance_minor
        row.balance_set_at = None if prepaid_balance_minor is None else now
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One limit as the owner sees it: what it allows, what is spent and held, what is left."""

    label: str
    cap_minor: int
    used_minor: int
    reserved_minor: int

    @property
    def left_minor(self) -> int:
        return max(0, self.cap_minor - self.used_minor - self.reserved_minor)


def budget_status(session: Session, extension_id: int, now: datetime) -> list[LimitStatus]:
    """Every limit that applies to one extension at `now`, the same figures `budget_for` uses."""
    extension = session.get(Extension, extension_id)
    if extension is None:
        raise LookupError(f"no extension {extension_id}")
    tenant = session.get(Tenant, extension.tenant_id)
    assert tenant is not None  # a foreign key guarantees it
    zone = ZoneInfo(tenant.timezone)
    day, month = local_day(now, zone), local_month(now, zone)
    own = _row(session, extension_id=extension_id)
    shared = _row(session, tenant_id=tenant.id)
    lines: list[LimitStatus] = []
    for row, scope, who in (
        (own, ChargeRow.extension_id == extension_id, _("this extension")),
        (shared, ChargeRow.tenant_id == tenant.id, _("your whole organisation")),
    ):
        if row is None:
            continue
        held = _reserved(
            session,
            extension_id if row is own else None,
            tenant.id if row is shared else None,
            now,
        )
        today = _spent(session, scope, ChargeRow.answered_at, day.start, day.end)
        if row.daily_cap_minor is not None:
            label = _("Daily cap from your provider, %(who)s") % {"who": who}
            lines.append(LimitStatus(label, row.daily_cap_minor, today, held))
        if row is own and row.owner_daily_cap_minor is not None:
            own_cap = row.owner_daily_cap_minor
            lines.append(LimitStatus(_("Your own daily cap"), own_cap, today, held))
        if row.prepaid_balance_minor is not None and row.balance_set_at is not None:
            spent = _spent(session, scope, ChargeRow.posted_at, row.balance_set_at)
            label = _("Prepaid balance, %(who)s") % {"who": who}
            lines.append(LimitStatus(label, row.prepaid_balance_minor, spent, held))
        if row.credit_limit_minor is not None:
            spent = _spent(session, scope, ChargeRow.answered_at, month.start, month.end)
            label = _("Monthly credit limit, %(who)s") % {"who": who}
            lines.append(LimitStatus(label, row.credit_limit_minor, spent, held))
    return lines


def provider_daily_cap(session: Session, extension_id: int) -> int | None:
    """The tighter of the provider's daily caps on this extension and its tenant, if any."""
    extension = session.get(Extension, extension_id)
    if extension is None:
        raise LookupError(f"no extension {extension_id}")
    caps = [
        row.daily_cap_minor
        for row in (
            _row(session, extension_id=extension_id),
            _row(session, tenant_id=extension.tenant_id),
        )
        if row is not None and row.daily_cap_minor is not None
    ]
    return min(caps) if caps else None


class CapTooHigh(ValueError):
    """An owner's own cap above the provider's would allow nothing more; refuse it."""


def set_owner_daily_cap(session: Session, extension_id: int, cap_minor: int | None) -> None:
    """Set (None: clear) the owner's own daily cap; never above the provider's."""
    if cap_minor is not None:
        if cap_minor < 0:
            raise ValueError("limits are never negative")
        provider = provider_daily_cap(session, extension_id)
        if provider is not None and cap_minor > provider:
            raise CapTooHigh(provider)
    row = _row(session, extension_id=extension_id)
    if row is None:
        if cap_minor is None:
            return
        row = BudgetRow(extension_id=extension_id)
        session.add(row)
    row.owner_daily_cap_minor = cap_minor
    session.flush()
