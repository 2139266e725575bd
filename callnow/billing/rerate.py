"""Re-rate a period with the decks as they are now, to check (or correct) what was posted.

Every answered, ended visitor leg of the period is priced again with all decks loaded whole,
so a difference means the decks changed after posting (a back-dated import, a corrected deck)
or a leg was never posted at all. A posted charge keeps the destination class it was posted
with: the class is decided when the call is made, and re-rating checks prices, not history.

Owner legs of calls that priced them are checked too, against the owner-leg price that call was
planned with (and today's tax rate, as for every charge), so a price switched on later never
bills the legs of calls made while they were free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from callnow.billing.budgets import Period
from callnow.billing.deck_store import load_rater
from callnow.billing.ledger import post_charge_for_leg, rate_leg
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import BillingPolicy, Charge, RatingRefused
from callnow.store.billing_models import ChargeRow, OwnerLegPriceRow
from callnow.store.models import CallLeg


@dataclass(frozen=True, slots=True)
class RerateDifference:
    call_leg_id: int
    answered_at: datetime
    number: str
    old_gross_minor: int | None  # None: never posted
    new_gross_minor: int | None  # None: cannot be priced now
    old_deck: str  # "deck 3 prefix 614", "flat", "owner leg" or ""
    new_deck: str
    note: str


@dataclass(frozen=True, slots=True)
class RerateReport:
    checked: int
    differences: tuple[RerateDifference, ...]
    applied: bool


def rerate(
    session: Session,
    period: Period,
    *,
    policy: BillingPolicy | None = None,
    apply: bool = False,
    now: datetime | None = None,
) -> RerateReport:
    """Compare every leg answered in `period` with its price now; with `apply`, correct the
    posted charges to the new prices and post the missing ones (within the caller's
    transaction, so all corrections land together or none do)."""
    policy = policy or BillingPolicy()
    rater = load_rater(session, policy)
    owner_leg_priced = (
        select(OwnerLegPriceRow.request_id)
        .where(OwnerLegPriceRow.request_id == CallLeg.request_id)
        .exists()
    )
    legs = session.execute(
        select(CallLeg, ChargeRow)
        .outerjoin(ChargeRow, ChargeRow.call_leg_id == CallLeg.id)
        .where(
            or_(
                CallLeg.role == LegRole.VISITOR.value,
                and_(CallLeg.role == LegRole.OWNER.value, owner_leg_priced),
            ),
            CallLeg.disposition == Disposition.ANSWERED.value,
            CallLeg.ended_at.is_not(None),
            CallLeg.answered_at >= period.start,
            CallLeg.answered_at < period.end,
        )
        .order_by(CallLeg.answered_at, CallLeg.id)
    ).all()
    differences: list[RerateDifference] = []
    for leg, posted in legs:
        assert leg.answered_at is not None
        try:
            if posted is None or leg.role == LegRole.OWNER.value:
                _, fresh = rate_leg(session, leg, policy=policy, rater=rater)
            else:
                fresh = rater.rate(
                    leg.destination,
                    DestinationClass(posted.destination_class),
                    leg.answered_at,
                    leg.billable_seconds,
                    str(posted.tenant_id),
                )
        except RatingRefused as exc:  # UnrateableLeg is one
            differences.append(_difference(leg, posted, None, f"cannot be priced: {exc}"))
            continue
        if posted is None:
            differences.append(_difference(leg, None, fresh, "answered but never posted"))
            if apply:
                post_charge_for_leg(session, leg.id, policy=policy, now=now)
        elif _changed(posted, fresh):
            differences.append(_difference(leg, posted, fresh, "price changed"))
            if apply:
                _correct(posted, fresh)
    if apply:
        session.flush()
    return RerateReport(len(legs), tuple(differences), applied=apply)


def _changed(posted: ChargeRow, fresh: Charge) -> bool:
    return (
        posted.net_minor,
        posted.tax_minor,
        posted.gross_minor,
        posted.billed_s,
        posted.deck_id,
        posted.prefix,
    ) != (
        fresh.net_minor,
        fresh.tax_minor,
        fresh.gross_minor,
        fresh.billed_s,
        _deck_id(fresh),
        fresh.prefix,
    )


def _correct(posted: ChargeRow, fresh: Charge) -> None:
    posted.net_minor = fresh.net_minor
    posted.tax_minor = fresh.tax_minor
    posted.gross_minor = fresh.gross_minor
    posted.billed_s = fresh.billed_s
    posted.deck_id = _deck_id(fresh)
    posted.prefix = fresh.prefix


def _deck_id(charge: Charge) -> int | None:
    return int(charge.deck_id) if charge.deck_id is not None else None


def _difference(
    leg: CallLeg, posted: ChargeRow | None, fresh: Charge | None, note: str
) -> RerateDifference:
    assert leg.answered_at is not None
    return RerateDifference(
        call_leg_id=leg.id,
        answered_at=leg.answered_at,
        number=leg.destination,
        old_gross_minor=posted.gross_minor if posted else None,
        new_gross_minor=fresh.gross_minor if fresh else None,
        old_deck=_source(leg, posted.deck_id, posted.prefix) if posted else "",
        new_deck=_source(leg, _deck_id(fresh), fresh.prefix) if fresh else "",
        note=note,
    )


def _source(leg: CallLeg, deck_id: int | None, prefix: str | None) -> str:
    if leg.role == LegRole.OWNER.value:
        return "owner leg"
    return "flat" if deck_id is None else f"deck {deck_id} prefix {prefix}"
