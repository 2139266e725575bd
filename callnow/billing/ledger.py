"""The billing ledger: post one charge per answered visitor leg (and per answered owner leg
where the owner's leg is priced), and check budgets before dialling. The store-facing half of
billing; the arithmetic is callnow.domain.rating's.

Posting is idempotent by construction: the charges table has a unique key on the leg, so the
engine may post after every leg end, after a crash, or twice at once, and the owner still pays
exactly once. `post_charge_with_retry` is the call the engine makes; it runs in its own
transaction and retries what a busy database refuses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from callnow.billing.budget_warning import warn_if_nearly_used_up
from callnow.billing.budgets import budget_for, set_budget
from callnow.billing.deck_store import (
    export_deck,
    import_deck,
    list_decks,
    load_rater,
    rater_for_number,
)
from callnow.domain.calls import Disposition, LegRole
from callnow.domain.cost_phrase import describe_cost
from callnow.domain.decision import Outcome
from callnow.domain.destinations import (
    Destination,
    DestinationClass,
    NumberRefused,
    classify_destination,
)
from callnow.domain.flow import FlowLimits
from callnow.domain.rating import (
    BillingPolicy,
    BudgetRefused,
    CallAllowed,
    Charge,
    DeckSet,
    OwnerLegRate,
    Quote,
    Rater,
    RatingRefused,
    max_duration_for_budget,
    most_a_call_costs,
)
from callnow.store.billing_models import ChargeRow, OwnerLegPriceRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, Extension, Profile, Tenant, utcnow

__all__ = [
    "DEFAULT_MAX_CALL_DURATION_S",
    "CallPlan",
    "NotRateable",
    "Parties",
    "SweepResult",
    "UnrateableLeg",
    "budget_for",
    "charge_of_leg",
    "check_before_dialling",
    "cost_phrase_for",
    "export_deck",
    "import_deck",
    "list_decks",
    "load_rater",
    "owner_leg_overhead_s",
    "owner_leg_price",
    "parties_of",
    "plan_call",
    "post_charge_for_leg",
    "post_charge_with_retry",
    "post_missing_charges",
    "quote_for_request",
    "rate_leg",
    "reserve",
    "set_budget",
    "unposted_leg_ids",
]

DEFAULT_MAX_CALL_DURATION_S = 3600  # the SIP settings' default; the engine passes its own


@dataclass(frozen=True, slots=True)
class NotRateable:
    """No price applies to this number (premium, no deck, no rate): so it must not be dialled."""

    number: str
    detail: str


class UnrateableLeg(RatingRefused):
    """An answered leg that no deck prices. Nothing is posted; fix the deck and post again."""


@dataclass(frozen=True, slots=True)
class Parties:
    """Who a call request belongs to: the owner's extension and its tenant."""

    request: CallRequest
    extension: Extension
    tenant: Tenant


@cache
def _with_owner() -> list[Any]:
    # Built once: building the loader option cost more than finding the request in the session.
    return [
        joinedload(CallRequest.profile, innerjoin=True)
        .joinedload(Profile.extension, innerjoin=True)
        .joinedload(Extension.tenant, innerjoin=True)
    ]


def parties_of(session: Session, request_id: int) -> Parties:
    # One query with its owner; none when the caller (the dispatcher's claim) already holds it.
    request = session.get(CallRequest, request_id, options=_with_owner())
    if request is None:
        raise LookupError(f"no call request {request_id}")
    extension = request.profile.extension
    return Parties(request, extension, extension.tenant)


def _classify(number: str, parties: Parties) -> Destination | NumberRefused:
    return classify_destination(number, parties.extension.external_number, parties.tenant.region)


@dataclass(frozen=True, slots=True)
class _Priced:
    """One pricing pass over a request: who pays, and the tariff of its number."""

    parties: Parties
    quote: Quote


def _price(
    session: Session, request_id: int, at: datetime, policy: BillingPolicy
) -> _Priced | NotRateable:
    parties = parties_of(session, request_id)
    number = parties.request.number_e164
    destination = _classify(number, parties)
    if isinstance(destination, NumberRefused):
        return NotRateable(number, destination.detail)
    rater = rater_for_number(session, destination.digits, at, parties.tenant.id, policy)
    try:
        quote = rater.quote(number, destination.destination_class, at, str(parties.tenant.id))
    except RatingRefused as exc:
        return NotRateable(number, str(exc))
    return _Priced(parties, quote)


def quote_for_request(
    session: Session, request_id: int, at: datetime, policy: BillingPolicy | None = None
) -> Quote | NotRateable:
    """The price that applies to the request's number if the call is answered at `at`."""
    priced = _price(session, request_id, at, policy or BillingPolicy())
    return priced if isinstance(priced, NotRateable) else priced.quote


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Everything billing says before a call is dialled, from one pricing pass.

    The engine hangs up `max_duration_s` after the visitor answers; `reserved_minor` (gross)
    is the most the call can then cost, the owner's leg included when it is priced, held
    against the owner's budget until it is charged; `cost_phrase` is what the owner hears
    before accepting; `owner_leg` is the owner leg's price, None while that leg is free.
    """

    max_duration_s: int
    limited_by_budget: bool
    reserved_minor: int
    cost_phrase: str
    owner_leg: OwnerLegRate | None = None

    @property
    def allowed(self) -> CallAllowed:
        return CallAllowed(self.max_duration_s, self.limited_by_budget)


def owner_leg_overhead_s(limits: FlowLimits, *, confirm: bool) -> int:
    """The longest the owner's leg can be up besides the bridged call, by the flow's timers:
    every confirm prompt and digit wait (when the owner must press 1), ringing the visitor,
    and the notice played when the visitor does not answer."""
    asking = limits.max_prompt_plays * (limits.prompt_max_s + limits.digit_wait_s)
    return math.ceil((asking if confirm else 0) + limits.visitor_ring_s + limits.prompt_max_s)


def plan_call(
    session: Session,
    request_id: int,
    now: datetime,
    *,
    max_call_duration_s: int = DEFAULT_MAX_CALL_DURATION_S,
    policy: BillingPolicy | None = None,
    flow_limits: FlowLimits | None = None,
) -> CallPlan | BudgetRefused | NotRateable:
    """Before the visitor leg is placed: may we dial, for how long at most, what must be
    held against the budget, and what to tell the owner. Prices are those in force at `now`.

    The engine must not dial on BudgetRefused or NotRateable. When the owner's leg is priced,
    its most possible cost (bounded by `flow_limits`' timers) counts against the budget too.
    """
    policy = policy or BillingPolicy()
    priced = _price(session, request_id, now, policy)
    if isinstance(priced, NotRateable):
        return priced
    owner_leg = None if policy.owner_leg.is_free else policy.owner_leg
    overhead_s = 0
    if owner_leg is not None:
        confirm = priced.parties.request.decision == Outcome.CONFIRM.value
        overhead_s = owner_leg_overhead_s(flow_limits or FlowLimits(), confirm=confirm)
    # Locked until the caller's transaction ends, so the reservation made from this reading is
    # the only one made from it (two engines on one PostgreSQL database).
    budget = budget_for(session, priced.parties.extension.id, now, for_reservation=True)
    allowed = max_duration_for_budget(
        budget, priced.quote, max_call_duration_s, policy, owner_leg_overhead_s=overhead_s
    )
    if isinstance(allowed, BudgetRefused):
        return allowed
    reserved = most_a_call_costs(
        priced.quote, allowed.max_duration_s, policy, owner_leg_overhead_s=overhead_s
    )
    return CallPlan(
        max_duration_s=allowed.max_duration_s,
        limited_by_budget=allowed.limited_by_budget,
        reserved_minor=reserved,
        cost_phrase=describe_cost(priced.quote, policy),
        owner_leg=owner_leg,
    )


def reserve(session: Session, request: CallRequest, plan: CallPlan) -> None:
    """Hold the plan's reservation for a claimed request, and fix its owner-leg price.

    The price is stored only when the owner's leg is priced, so with the default (free) nothing
    is written. A request claimed again (it was never dialled) is planned afresh.
    """
    request.reserved_minor = plan.reserved_minor
    earlier = None
    if plan.owner_leg is not None or request.claim_count > 1:
        earlier = session.get(OwnerLegPriceRow, request.id)
    if plan.owner_leg is None:
        if earlier is not None:
            session.delete(earlier)
        return
    if earlier is None:
        earlier = OwnerLegPriceRow(request_id=request.id)
        session.add(earlier)
    earlier.flat_minor = plan.owner_leg.flat_minor
    earlier.per_minute_minor = plan.owner_leg.per_minute_minor


def check_before_dialling(
    session: Session,
    request_id: int,
    now: datetime,
    *,
    max_call_duration_s: int = DEFAULT_MAX_CALL_DURATION_S,
    policy: BillingPolicy | None = None,
) -> CallAllowed | BudgetRefused | NotRateable:
    """plan_call's verdict alone: may we dial, and for how long at most?"""
    plan = plan_call(
        session, request_id, now, max_call_duration_s=max_call_duration_s, policy=policy
    )
    return plan.allowed if isinstance(plan, CallPlan) else plan


def cost_phrase_for(
    session: Session,
    request_id: int,
    now: datetime,
    *,
    policy: BillingPolicy | None = None,
    mention_tax: bool = False,
) -> str | None:
    """What the call will cost, for the owner's prompt and the web; None when it cannot be
    priced (and so will not be dialled). No budget is read: the web shows it while waiting."""
    policy = policy or BillingPolicy()
    priced = _price(session, request_id, now, policy)
    if isinstance(priced, NotRateable):
        return None
    return describe_cost(priced.quote, policy, mention_tax=mention_tax)


def charge_of_leg(session: Session, call_leg_id: int) -> ChargeRow | None:
    return session.scalars(select(ChargeRow).where(ChargeRow.call_leg_id == call_leg_id)).first()


def owner_leg_price(session: Session, request_id: int) -> OwnerLegRate | None:
    """The owner-leg price the request's call was planned with; None: that leg is free."""
    row = session.get(OwnerLegPriceRow, request_id)
    return None if row is None else OwnerLegRate(row.flat_minor, row.per_minute_minor)


def _is_billable(session: Session, leg: CallLeg) -> bool:
    """A leg that was answered and has ended: the visitor's, or the owner's when its call was
    planned with an owner-leg price. An unanswered leg costs nothing; a leg still up is posted
    when it ends."""
    if not (
        leg.disposition == Disposition.ANSWERED.value
        and leg.answered_at is not None
        and leg.ended_at is not None
    ):
        return False
    if leg.role == LegRole.OWNER.value:
        return owner_leg_price(session, leg.request_id) is not None
    return leg.role == LegRole.VISITOR.value


def rate_leg(
    session: Session,
    leg: CallLeg,
    *,
    policy: BillingPolicy | None = None,
    rater: Rater | None = None,
) -> tuple[Parties, Charge]:
    """Price an answered leg without posting it; raises UnrateableLeg.

    `rater` defaults to one reading only the decks this leg needs; re-rating a period passes
    one loaded whole. An owner leg is priced as its call was planned (see `reserve`).
    """
    if leg.answered_at is None:
        raise ValueError(f"leg {leg.id} was not answered")
    parties = parties_of(session, leg.request_id)
    if leg.role == LegRole.OWNER.value:
        owner_leg = owner_leg_price(session, leg.request_id)
        if owner_leg is None:
            raise ValueError(f"leg {leg.id} is the owner's, and its call did not price it")
        quote = Quote(DestinationClass.INTERNAL, owner_leg, None)
        rater = rater or Rater(DeckSet(), policy)
        return parties, rater.charge(quote, leg.billable_seconds)
    destination = _classify(leg.destination, parties)
    if isinstance(destination, NumberRefused):
        raise UnrateableLeg(f"leg {leg.id} to {leg.destination}: {destination.detail}")
    tenant_id = parties.tenant.id
    if rater is None:
        rater = rater_for_number(session, destination.digits, leg.answered_at, tenant_id, policy)
    try:
        charge = rater.rate(
            leg.destination,
            destination.destination_class,
            leg.answered_at,
            leg.billable_seconds,
            str(tenant_id),
        )
    except RatingRefused as exc:
        raise UnrateableLeg(f"leg {leg.id}: {exc}") from exc
    return parties, charge


def post_charge_for_leg(
    session: Session,
    call_leg_id: int,
    *,
    policy: BillingPolicy | None = None,
    now: datetime | None = None,
) -> ChargeRow | None:
    """Post the leg's charge once; return it, or None for a leg that costs nothing.

    Called again for the same leg it returns the charge already posted. Rated with the deck in
    force when the leg was answered, for the tenant of the request's extension, "local" being
    judged against that extension's external number. Raises UnrateableLeg when no price applies
    (the pre-dial check should have stopped such a call) and LookupError for an unknown leg.
    """
    existing = charge_of_leg(session, call_leg_id)
    if existing is not None:
        return existing
    leg = session.get(CallLeg, call_leg_id)
    if leg is None:
        raise LookupError(f"no call leg {call_leg_id}")
    if not _is_billable(session, leg):
        return None
    parties, charge = rate_leg(session, leg, policy=policy)
    assert leg.answered_at is not None
    tenant_id = parties.tenant.id
    row = ChargeRow(
        call_leg_id=leg.id,
        request_id=leg.request_id,
        extension_id=parties.extension.id,
        tenant_id=tenant_id,
        number=leg.destination,
        destination_class=charge.destination_class.value,
        deck_id=int(charge.deck_id) if charge.deck_id is not None else None,
        prefix=charge.prefix,
        duration_s=charge.duration_s,
        billed_s=charge.billed_s,
        net_minor=charge.net_minor,
        tax_minor=charge.tax_minor,
        gross_minor=charge.gross_minor,
        currency=charge.currency_code,
        answered_at=leg.answered_at,
        posted_at=now or utcnow(),
    )
    try:
        # A savepoint, so losing the race rolls back only this insert, not the caller's work.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another poster got there between our SELECT and INSERT: theirs is the charge.
        existing = charge_of_leg(session, call_leg_id)
        if existing is None:
            raise
        return existing
    return row


def post_charge_with_retry(
    sessions: sessionmaker[Session],
    call_leg_id: int,
    *,
    policy: BillingPolicy | None = None,
    attempts: int = 5,
) -> ChargeRow | None:
    """post_charge_for_leg in a transaction of its own, retried when the database is busy.

    SQLite refuses a writer whose snapshot went stale ("database is locked") instead of making
    it wait; PostgreSQL can report a serialisation failure. Either way a fresh transaction sees
    the winner's charge, so a retry ends in exactly one charge.
    """
    for attempt in range(1, attempts + 1):
        try:
            with transaction(sessions) as session:
                charge = post_charge_for_leg(session, call_leg_id, policy=policy)
                if charge is not None:
                    warn_if_nearly_used_up(session, charge.extension_id, charge.posted_at)
                return charge
        except (OperationalError, IntegrityError):
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class SweepResult:
    posted: tuple[int, ...]  # charge ids
    unrateable: tuple[int, ...]  # leg ids no deck prices; they stay unposted until one does


def unposted_leg_ids(
    session: Session,
    *,
    after_id: int = 0,
    limit: int | None = 500,
    ended_since: datetime | None = None,
) -> list[int]:
    """Answered, ended legs that bill but have no charge, in id order from `after_id`: visitor
    legs, and owner legs of calls planned with an owner-leg price. `ended_since` looks only at
    legs that ended since then (indexed: a running engine sweeps often)."""
    owner_leg_priced = (
        select(OwnerLegPriceRow.request_id)
        .where(OwnerLegPriceRow.request_id == CallLeg.request_id)
        .exists()
    )
    query = (
        select(CallLeg.id)
        .outerjoin(ChargeRow, ChargeRow.call_leg_id == CallLeg.id)
        .where(
            ChargeRow.id.is_(None),
            CallLeg.id > after_id,
            or_(
                CallLeg.role == LegRole.VISITOR.value,
                and_(CallLeg.role == LegRole.OWNER.value, owner_leg_priced),
            ),
            CallLeg.disposition == Disposition.ANSWERED.value,
            CallLeg.answered_at.is_not(None),
            CallLeg.ended_at.is_not(None),
        )
        .order_by(CallLeg.id)
        .limit(limit)
    )
    if ended_since is not None:
        query = query.where(CallLeg.ended_at >= ended_since)
    return list(session.scalars(query))


def post_missing_charges(
    sessions: sessionmaker[Session],
    *,
    policy: BillingPolicy | None = None,
    batch: int = 500,
) -> SweepResult:
    """Post every answered leg that has no charge yet: what a crash between "leg recorded" and
    "charge posted" left behind. Safe to run at every engine start and at any time alongside
    live posting, since posting a leg twice still bills it once."""
    posted: list[int] = []
    unrateable: list[int] = []
    after_id = 0
    while True:
        with sessions() as session:
            leg_ids = unposted_leg_ids(session, after_id=after_id, limit=batch)
        if not leg_ids:
            return SweepResult(tuple(posted), tuple(unrateable))
        for leg_id in leg_ids:
            try:
                charge = post_charge_with_retry(sessions, leg_id, policy=policy)
            except UnrateableLeg:
                unrateable.append(leg_id)
                continue
            if charge is not None:
                posted.append(charge.id)
        after_id = leg_ids[-1]
