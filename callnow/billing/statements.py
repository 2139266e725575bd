"""What owners and providers read: charges of a month, day totals, statements as CSV.

Months and days are the tenant's calendar (its time zone), because that is the day an owner
remembers a call on; the CSV carries local time with its UTC offset so nothing is ambiguous.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callnow.billing.budgets import Period, month_period
from callnow.billing.money import format_minor
from callnow.domain.destinations import DestinationClass
from callnow.i18n import pgettext
from callnow.store.billing_models import ChargeRow
from callnow.store.models import CallRequest, Extension, Profile, Tenant

_MONTH = re.compile(r"(\d{4})-(\d{2})")
STATEMENT_HEADER = (
    "answered_at",
    "extension",
    "callnow_id",
    "caller_name",
    "number",
    "destination_class",
    "duration_s",
    "billed_s",
    "net",
    "tax",
    "gross",
    "currency",
    "deck_id",
    "prefix",
)


def class_label(destination_class: str) -> str:
    """What people read for a charge class ("national fixed"), in the language in use; the CSV
    and the API keep the class itself. The owner's own leg gets words of its own. The context
    keeps these apart from the same words spoken by the phone prompts."""
    match destination_class:
        case DestinationClass.LOCAL:
            return pgettext("charge class", "local")
        case DestinationClass.NATIONAL_FIXED:
            return pgettext("charge class", "national fixed")
        case DestinationClass.MOBILE:
            return pgettext("charge class", "mobile")
        case DestinationClass.INTERNATIONAL:
            return pgettext("charge class", "international")
        case DestinationClass.SPECIAL:
            return pgettext("charge class", "special rate")
        case DestinationClass.PREMIUM:
            return pgettext("charge class", "premium")
        case DestinationClass.INTERNAL:
            return pgettext("charge class", "your extension's leg")
    return destination_class.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ChargeLine:
    charge_id: int
    call_leg_id: int
    request_id: int
    answered_at: datetime  # in the tenant's time zone
    extension: str
    callnow_id: str
    caller_name: str | None
    number: str
    destination_class: str
    duration_s: int
    billed_s: int
    net_minor: int
    tax_minor: int
    gross_minor: int
    currency: str
    deck_id: int | None
    prefix: str | None

    @property
    def is_owner_leg(self) -> bool:
        return self.destination_class == DestinationClass.INTERNAL.value

    @property
    def label(self) -> str:
        return class_label(self.destination_class)


@dataclass(frozen=True, slots=True)
class Totals:
    calls: int  # charged callbacks: a priced owner leg and its visitor leg are one call
    duration_s: int  # talk time: visitor legs only, which the owner's leg overlaps
    net_minor: int
    tax_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: date
    calls: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class OwnerScope:
    """The extensions whose charges one user sees, and the calendar they are shown in."""

    extension_ids: tuple[int, ...]
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class TenantSpend:
    tenant_id: int
    tenant_name: str
    calls: int
    gross_minor: int


def parse_month(text: str) -> date:
    """ "2026-11" -> date(2026, 11, 1); ValueError for anything else."""
    match = _MONTH.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise ValueError(f"{text!r} is not a month like 2026-11")
    return date(int(match.group(1)), int(match.group(2)), 1)


def owner_scope(session: Session, user_id: int, default_zone: str = "UTC") -> OwnerScope:
    """An owner sees the charges of the extensions they own, in their tenant's time zone."""
    rows = session.execute(
        select(Extension.id, Tenant.timezone)
        .join(Tenant, Tenant.id == Extension.tenant_id)
        .where(Extension.owner_user_id == user_id)
        .order_by(Extension.id)
    ).all()
    zone = ZoneInfo(rows[0][1] if rows else default_zone)
    return OwnerScope(tuple(extension_id for extension_id, _ in rows), zone)


def current_month(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date().replace(day=1)


def days_in_month(first_day: date) -> int:
    following = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - first_day).days


def charge_lines(
    session: Session,
    period: Period,
    zone: ZoneInfo,
    *,
    extension_ids: Collection[int] | None = None,
    tenant_id: int | None = None,
    newest_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[ChargeLine]:
    """Charges answered in `period`, for some extensions or a tenant (or all, for neither)."""
    query = (
        select(ChargeRow, CallRequest.caller_name, Extension.internal_number, Profile.callnow_id)
        .join(CallRequest, CallRequest.id == ChargeRow.request_id)
        .join(Profile, Profile.id == CallRequest.profile_id)
        .join(Extension, Extension.id == ChargeRow.extension_id)
        .where(ChargeRow.answered_at >= period.start, ChargeRow.answered_at < period.end)
    )
    if extension_ids is not None:
        query = query.where(ChargeRow.extension_id.in_(list(extension_ids)))
    if tenant_id is not None:
        query = query.where(ChargeRow.tenant_id == tenant_id)
    order = ChargeRow.answered_at.desc() if newest_first else ChargeRow.answered_at
    query = query.order_by(order, ChargeRow.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [
        ChargeLine(
            charge_id=charge.id,
            call_leg_id=charge.call_leg_id,
            request_id=charge.request_id,
            answered_at=charge.answered_at.astimezone(zone),
            extension=internal,
            callnow_id=callnow_id,
            caller_name=caller_name,
            number=charge.number,
            destination_class=charge.destination_class,
            duration_s=charge.duration_s,
            billed_s=charge.billed_s,
            net_minor=charge.net_minor,
            tax_minor=charge.tax_minor,
            gross_minor=charge.gross_minor,
            currency=charge.currency,
            deck_id=charge.deck_id,
            prefix=charge.prefix,
        )
        for charge, caller_name, internal, callnow_id in session.execute(query)
    ]


def month_lines(
    session: Session,
    first_day: date,
    zone: ZoneInfo,
    *,
    extension_ids: Collection[int] | None = None,
    tenant_id: int | None = None,
    newest_first: bool = False,
) -> list[ChargeLine]:
    """Every charge of one calendar month in `zone`."""
    return charge_lines(
        session,
        month_period(first_day, zone),
        zone,
        extension_ids=extension_ids,
        tenant_id=tenant_id,
        newest_first=newest_first,
    )


def totals(lines: Iterable[ChargeLine]) -> Totals:
    requests: set[int] = set()
    duration = net = tax = gross = 0
    for line in lines:
        requests.add(line.request_id)
        if not line.is_owner_leg:
            duration += line.duration_s
        net += line.net_minor
        tax += line.tax_minor
        gross += line.gross_minor
    return Totals(len(requests), duration, net, tax, gross)


def daily_totals(lines: Iterable[ChargeLine], first_day: date) -> list[DayTotal]:
    """One entry for every day of the month starting `first_day`, days without calls included."""
    count = days_in_month(first_day)
    calls: list[set[int]] = [set() for _ in range(count)]
    gross = [0] * count
    for line in lines:
        index = (line.answered_at.date() - first_day).days
        if 0 <= index < count:
            calls[index].add(line.request_id)
            gross[index] += line.gross_minor
    return [DayTotal(first_day + timedelta(days=i), len(calls[i]), gross[i]) for i in range(count)]


def statement_csv(lines: Iterable[ChargeLine], exponent: int = 2) -> str:
    """One row per charge; amounts in major units with the currency's decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATEMENT_HEADER)
    for line in lines:
        writer.writerow(
            (
                line.answered_at.isoformat(timespec="seconds"),
                line.extension,
                line.callnow_id,
                _spreadsheet_safe(line.caller_name or ""),
                line.number,
                line.destination_class,
                line.duration_s,
                line.billed_s,
                format_minor(line.net_minor, exponent),
                format_minor(line.tax_minor, exponent),
                format_minor(line.gross_minor, exponent),
                line.currency,
                line.deck_id if line.deck_id is not None else "",
                line.prefix or "",
            )
        )
    return out.getvalue()


def _spreadsheet_safe(text: str) -> str:
    # Caller names are typed by web visitors: keep "=cmd()" from becoming a spreadsheet formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def spend_per_tenant(session: Session, period: Period) -> list[TenantSpend]:
    """Every tenant with its calls and gross spend in `period`, biggest spender first."""
    rows = session.execute(
        select(
            Tenant.id,
            Tenant.name,
            func.count(ChargeRow.request_id.distinct()),  # an owner leg is not another call
            func.coalesce(func.sum(ChargeRow.gross_minor), 0),
        )
        .outerjoin(
            ChargeRow,
            (ChargeRow.tenant_id == Tenant.id)
            & (ChargeRow.answered_at >= period.start)
            & (ChargeRow.answered_at < period.end),
        )
        .group_by(Tenant.id, Tenant.name)
    )
    spends = [TenantSpend(tid, name, int(calls), int(gross)) for tid, name, calls, gross in rows]
    return sorted(spends, key=lambda s: (-s.gross_minor, s.tenant_name))
