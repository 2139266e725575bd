"""Billing in the Call API: an owner's charges and monthly statement, as the portal shows them.

Amounts are integers in the currency's minor unit (cents), as they are stored: JSON numbers
then never pass through a float anywhere between our database and the client's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from callnow.billing.budgets import month_period
from callnow.billing.policy import policy_from
from callnow.billing.statements import (
    ChargeLine,
    charge_lines,
    daily_totals,
    month_lines,
    owner_scope,
    parse_month,
    statement_csv,
    totals,
)
from callnow.store.models import User
from callnow.web.api import SIZE_LIMITS, Invalid, Problem, Responses, api_user
from callnow.web.context import UnitOfWork, app_state

router = APIRouter(prefix="/api/v1/billing", tags=["Billing"], responses=SIZE_LIMITS)

UserDep = Annotated[User, Depends(api_user)]
SessionDep = UnitOfWork
MonthQuery = Annotated[
    str,
    Query(
        pattern=r"^(2\d{3}|[3-9]\d{3})-(0[1-9]|1[0-2])$",
        examples=["2026-11"],
        description="In your time zone",
    ),
]
ERRORS: Responses = {401: {"model": Problem}, 422: {"model": Invalid}}


class ChargeOut(BaseModel):
    id: int
    answered_at: datetime = Field(description="In the tenant's time zone, with its offset")
    extension: str
    callnow_id: str
    caller_name: str | None
    number: str = Field(description="E.164; for your extension's leg, its internal number")
    destination_class: str = Field(
        description="local, national_fixed, mobile, international, special, or internal: "
        "your own extension's leg, charged only where the provider prices it"
    )
    label: str = Field(description="The class in words, as the portal shows it")
    duration_s: int
    billed_s: int = Field(description="Seconds charged after billing increments")
    net_minor: int = Field(description="Before tax, in minor units (cents)")
    tax_minor: int
    gross_minor: int = Field(description="What you pay, in minor units (cents)")
    currency: str


class TotalsOut(BaseModel):
    calls: int = Field(description="Charged callbacks; your extension's leg is not another call")
    duration_s: int = Field(description="Talk time with your visitors")
    net_minor: int
    tax_minor: int
    gross_minor: int


class DayOut(BaseModel):
    day: date
    calls: int
    gross_minor: int


class StatementOut(BaseModel):
    month: str
    time_zone: str
    currency: str
    minor_unit_exponent: int
    totals: TotalsOut
    days: list[DayOut]
    charges: list[ChargeOut]


def _charge_out(line: ChargeLine) -> ChargeOut:
    return ChargeOut(
        id=line.charge_id,
        answered_at=line.answered_at,
        extension=line.extension,
        callnow_id=line.callnow_id,
        caller_name=line.caller_name,
        number=line.number,
        destination_class=line.destination_class,
        label=line.label,
        duration_s=line.duration_s,
        billed_s=line.billed_s,
        net_minor=line.net_minor,
        tax_minor=line.tax_minor,
        gross_minor=line.gross_minor,
        currency=line.currency,
    )


def _month(text: str) -> date:
    try:
        return parse_month(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/charges", response_model=list[ChargeOut], responses=ERRORS)
def list_charges(
    user: UserDep,
    session: SessionDep,
    month: MonthQuery,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ChargeOut]:
    """Your charged callbacks of one month, newest first."""
    scope = owner_scope(session, user.id)
    lines = charge_lines(
        session,
        month_period(_month(month), scope.zone),
        scope.zone,
        extension_ids=scope.extension_ids,
        newest_first=True,
        limit=limit,
        offset=offset,
    )
    return [_charge_out(line) for line in lines]


@router.get("/statement", response_model=StatementOut, responses=ERRORS)
def statement(
    request: Request, user: UserDep, session: SessionDep, month: MonthQuery
) -> StatementOut:
    """One month: totals, calls and spend per day, and every charge in time order."""
    policy = policy_from(app_state(request).settings.billing)
    scope = owner_scope(session, user.id)
    first_day = _month(month)
    lines = month_lines(session, first_day, scope.zone, extension_ids=scope.extension_ids)
    total = totals(lines)
    return StatementOut(
        month=f"{first_day:%Y-%m}",
        time_zone=str(scope.zone),
        currency=policy.currency_code,
        minor_unit_exponent=policy.minor_unit_exponent,
        totals=TotalsOut(
            calls=total.calls,
            duration_s=total.duration_s,
            net_minor=total.net_minor,
            tax_minor=total.tax_minor,
            gross_minor=total.gross_minor,
        ),
        days=[
            DayOut(day=d.day, calls=d.calls, gross_minor=d.gross_minor)
            for d in daily_totals(lines, first_day)
        ],
        charges=[_charge_out(line) for line in lines],
    )


@router.get(
    "/statement.csv",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
)
def statement_as_csv(
    request: Request, user: UserDep, session: SessionDep, month: MonthQuery
) -> Response:
    """The same month as CSV, amounts in major units ("0.13")."""
    scope = owner_scope(session, user.id)
    first_day = _month(month)
    lines = month_lines(session, first_day, scope.zone, extension_ids=scope.extension_ids)
    return Response(
        statement_csv(lines, app_state(request).settings.billing.minor_unit_exponent),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="callnow-{first_day:%Y-%m}.csv"'},
    )
