"""The owner's own leg: free unless the provider prices it, and then charged exactly once.

Each call here is dispatched as the engine does it (plan_call, then reserve in the claim
transaction) before its legs are written, because a call's owner-leg price is fixed when it is
planned. Local calls are 12c + 1c GST. The priced owner leg is 5c per answered leg plus 2c per
started minute, before 10% GST, rounded half-up once per charge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing import ledger
from callnow.billing.budgets import Period, budget_for, set_budget
from callnow.billing.policy import policy_from
from callnow.billing.rerate import rerate
from callnow.billing.statements import charge_lines, statement_csv, totals
from callnow.config import BillingSettings, Settings
from callnow.domain.flow import FlowLimits
from callnow.domain.rating import BillingPolicy, BudgetRefused
from callnow.store.billing_models import ChargeRow, OwnerLegPriceRow
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallLeg, CallRequest
from callnow.web import billing_api, billing_portal
from tests.billing.test_ledger import (
    LOCAL,
    NOV_20_2PM_SYDNEY,
    add_request,
    charge_count,
    extension_id,
    import_platform_deck,
    seed_two_owners,
)
from tests.support.world import PASSWORD
from tests.web.helpers import form_token

PRICED = policy_from(BillingSettings(owner_leg_flat_minor=5, owner_leg_per_minute_minor=2))
FREE = policy_from(BillingSettings())
DIALLED_AT = NOV_20_2PM_SYDNEY - timedelta(minutes=1)
# Accepted automatically: the owner's leg may be up 45 s (ringing the visitor) + 30 s (the
# notice) longer than the bridged call.
OVERHEAD_S = 75


def dispatch(session: Session, policy: BillingPolicy, *, max_call_duration_s: int = 600) -> int:
    """A queued local-call request, claimed and planned as the dispatcher does; its id."""
    request_id = add_request(session, "alice", LOCAL)
    request = session.get(CallRequest, request_id)
    assert request is not None
    request.state = "queued"
    plan = ledger.plan_call(
        session,
        request_id,
        DIALLED_AT,
        max_call_duration_s=max_call_duration_s,
        policy=policy,
        flow_limits=FlowLimits(),
    )
    assert isinstance(plan, ledger.CallPlan), plan
    ledger.reserve(session, request, plan)
    request.state = "completed"
    session.flush()
    return request_id


def add_legs(session: Session, request_id: int, *, owner_s: int, visitor_s: int) -> dict:
    """Both legs answered and ended: the owner answered `owner_s - requester_s` seconds before
    the visitor, and both hung up together. Returns the leg ids by role."""
    ended = NOV_20_2PM_SYDNEY + timedelta(seconds=visitor_s)
    owner_answered = ended - timedelta(seconds=owner_s)
    legs = {
        "owner": CallLeg(
            request_id=request_id,
            role="owner",
            destination="001002",
            started_at=owner_answered - timedelta(seconds=3),
            answered_at=owner_answered,
            ended_at=ended,
            sip_code=200,
            disposition="answered",
            billable_seconds=owner_s,
        ),
        "requester": CallLeg(
            request_id=request_id,
            role="requester",
            destination=LOCAL,
            started_at=NOV_20_2PM_SYDNEY - timedelta(seconds=5),
            answered_at=NOV_20_2PM_SYDNEY,
            ended_at=ended,
            sip_code=200,
            disposition="answered",
            billable_seconds=visitor_s,
        ),
    }
    session.add_all(legs.values())
    session.flush()
    return {role: leg.id for role, leg in legs.items()}


def charge_classes(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(ChargeRow.destination_class, ChargeRow.gross_minor).order_by(ChargeRow.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]  # each row is (str, int)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        seed_two_owners(session)
        import_platform_deck(session)
    yield factory
    engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with transaction(sessions) as session:
        yield session


# ---------------------------------------------------------------------------- posting


def test_a_priced_owner_leg_posts_one_charge_of_its_own(session):
    legs = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
    owner = ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED)
    visitor = ledger.post_charge_for_leg(session, legs["requester"], policy=PRICED)
    assert owner is not None and visitor is not None
    # 125 s is 3 started minutes: 5c + 3 x 2c = 11c, GST 1.1c -> 1c.
    assert (owner.destination_class, owner.billed_s, owner.duration_s) == ("internal", 180, 125)
    assert (owner.net_minor, owner.tax_minor, owner.gross_minor) == (11, 1, 12)
    assert (owner.number, owner.deck_id, owner.prefix) == ("001002", None, None)
    assert owner.extension_id == visitor.extension_id == extension_id(session, "001002")
    assert (visitor.destination_class, visitor.gross_minor) == ("local", 13)
    assert charge_count(session) == 2


def test_posting_an_owner_leg_twice_bills_it_once(session):
    legs = add_legs(session, dispatch(session, PRICED), owner_s=30, visitor_s=10)
    first = ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED)
    again = ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED)
    assert first is not None and again is not None and again.id == first.id
    assert charge_count(session) == 1


def test_an_owner_leg_answered_for_no_time_still_owes_its_flat_price(session):
    legs = add_legs(session, dispatch(session, PRICED), owner_s=0, visitor_s=0)
    owner = ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED)
    assert owner is not None and (owner.billed_s, owner.net_minor, owner.gross_minor) == (0, 5, 6)


def test_with_the_default_settings_the_owner_leg_writes_nothing(session):
    request_id = dispatch(session, FREE)
    assert session.get(OwnerLegPriceRow, request_id) is None
    legs = add_legs(session, request_id, owner_s=125, visitor_s=95)
    assert ledger.post_charge_for_leg(session, legs["owner"], policy=FREE) is None
    assert ledger.post_charge_for_leg(session, legs["requester"], policy=FREE) is not None
    assert charge_classes(session) == [("local", 13)]


def test_pricing_the_owner_leg_later_never_bills_calls_made_while_it_was_free(sessions):
    with transaction(sessions) as session:
        legs = add_legs(session, dispatch(session, FREE), owner_s=125, visitor_s=95)
    # The provider switches the price on; the engine restarts and sweeps.
    result = ledger.post_missing_charges(sessions, policy=PRICED)
    assert len(result.posted) == 1
    with sessions() as session:
        assert ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED) is None
        assert charge_classes(session) == [("local", 13)]


def test_a_call_is_billed_at_the_owner_leg_price_it_was_planned_with(session):
    legs = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
    # The price is switched off while the call runs: the call keeps the terms it reserved.
    owner = ledger.post_charge_for_leg(session, legs["owner"], policy=FREE)
    assert owner is not None and owner.gross_minor == 12


def test_the_sweep_posts_unposted_owner_legs_and_only_once(sessions):
    with transaction(sessions) as session:
        legs = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
        unanswered = dispatch(session, PRICED)
        session.add(
            CallLeg(
                request_id=unanswered,
                role="owner",
                destination="001002",
                started_at=NOV_20_2PM_SYDNEY,
                ended_at=NOV_20_2PM_SYDNEY + timedelta(seconds=30),
                sip_code=486,
                disposition="busy",
                billable_seconds=0,
            )
        )
    with sessions() as session:
        assert ledger.unposted_leg_ids(session) == [legs["owner"], legs["requester"]]
    first = ledger.post_missing_charges(sessions, policy=PRICED)
    again = ledger.post_missing_charges(sessions, policy=PRICED)
    assert len(first.posted) == 2 and again.posted == ()
    with sessions() as session:
        assert sorted(charge_classes(session)) == [("internal", 12), ("local", 13)]


# ---------------------------------------------------------------------------- budgets


def test_the_reservation_covers_the_owner_leg_for_the_longest_it_can_be_up(session):
    request_id = dispatch(session, PRICED, max_call_duration_s=600)
    # 600 s bridged + 75 s is 12 started minutes: 5c + 24c = 29c, GST 2.9c -> 3c: 32c.
    assert session.get(CallRequest, request_id).reserved_minor == 13 + 32
    assert session.get(OwnerLegPriceRow, request_id).per_minute_minor == 2
    assert dispatch_reserved(session, FREE, max_call_duration_s=600) == 13


def dispatch_reserved(session: Session, policy: BillingPolicy, **kwargs) -> int | None:
    return session.get(CallRequest, dispatch(session, policy, **kwargs)).reserved_minor


def test_the_budget_pays_for_both_legs_before_anything_is_dialled(session):
    alice = extension_id(session, "001002")
    request_id = add_request(session, "alice", LOCAL)

    def plan(prepaid_minor: int):
        set_budget(session, DIALLED_AT, extension_id=alice, prepaid_balance_minor=prepaid_minor)
        return ledger.plan_call(session, request_id, DIALLED_AT, policy=PRICED)

    # The local call alone (13c) fits in 20c, but not with the owner leg's first 75 s (10c).
    assert isinstance(plan(20), BudgetRefused)
    free = ledger.plan_call(session, request_id, DIALLED_AT, policy=FREE)
    assert isinstance(free, ledger.CallPlan)
    # 25c: 13c + an owner leg of at most 3 minutes (12c), so 180 - 75 = 105 s bridged.
    allowed = plan(25)
    assert isinstance(allowed, ledger.CallPlan)
    assert (allowed.max_duration_s, allowed.reserved_minor) == (105, 25)


def test_the_owner_is_told_the_price_of_their_own_leg_before_accepting(session):
    request_id = add_request(session, "alice", LOCAL)

    def told(policy: BillingPolicy) -> tuple[str, str | None]:
        plan = ledger.plan_call(session, request_id, DIALLED_AT, policy=policy)
        assert isinstance(plan, ledger.CallPlan)
        # The prompt on the phone, and the pending request in the portal.
        in_portal = ledger.cost_phrase_for(session, request_id, DIALLED_AT, policy=policy)
        return plan.cost_phrase, in_portal

    owner_leg = "your extension's leg, 2 cents a minute plus 5 cents when answered"
    priced = f"a local call, 12 cents; {owner_leg}"
    assert told(PRICED) == (priced, priced)
    assert told(FREE) == ("a local call, 12 cents", "a local call, 12 cents")


def test_the_reservation_holds_until_the_owner_leg_is_charged_too(session):
    alice = extension_id(session, "001002")
    set_budget(session, DIALLED_AT, extension_id=alice, prepaid_balance_minor=1_000)
    request_id = dispatch(session, PRICED, max_call_duration_s=600)
    legs = add_legs(session, request_id, owner_s=125, visitor_s=95)
    ledger.post_charge_for_leg(session, legs["requester"], policy=PRICED)
    held = budget_for(session, alice, NOV_20_2PM_SYDNEY).prepaid_balance_minor
    assert held == 1_000 - 13 - 45  # charged 13c, and the whole reservation still held
    ledger.post_charge_for_leg(session, legs["owner"], policy=PRICED)
    assert budget_for(session, alice, NOV_20_2PM_SYDNEY).prepaid_balance_minor == 1_000 - 25


# ---------------------------------------------------------------------------- re-rating


def test_rerating_checks_owner_legs_against_the_price_their_call_was_planned_with(session):
    priced = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
    unposted = add_legs(session, dispatch(session, PRICED), owner_s=30, visitor_s=10)
    free = add_legs(session, dispatch(session, FREE), owner_s=30, visitor_s=10)
    for leg_id in (priced["owner"], priced["requester"], unposted["requester"]):
        ledger.post_charge_for_leg(session, leg_id, policy=PRICED)
    ledger.post_charge_for_leg(session, free["requester"], policy=PRICED)
    period = Period(NOV_20_2PM_SYDNEY - timedelta(hours=1), NOV_20_2PM_SYDNEY + timedelta(hours=1))

    report = rerate(session, period, policy=PRICED)
    assert report.checked == 5  # three visitor legs and the two owner legs that bill
    [missing] = report.differences
    assert (missing.call_leg_id, missing.note) == (unposted["owner"], "answered but never posted")
    assert (missing.new_gross_minor, missing.new_deck) == (7 + 1, "owner leg")  # 1 minute

    # GST goes up to 20%: every charge is re-priced, the owner legs included.
    dearer = BillingPolicy(tax_rate=PRICED.tax_rate * 2, tariffs=PRICED.tariffs)
    report = rerate(session, period, policy=dearer, apply=True, now=NOV_20_2PM_SYDNEY)
    owner_change = next(d for d in report.differences if d.call_leg_id == priced["owner"])
    assert (owner_change.old_gross_minor, owner_change.new_gross_minor) == (12, 13)
    assert owner_change.note == "price changed" and owner_change.old_deck == "owner leg"
    assert ledger.charge_of_leg(session, unposted["owner"]).gross_minor == 7 + 1  # 1.4c GST
    assert ledger.charge_of_leg(session, free["owner"]) is None


# ---------------------------------------------------------------------------- statements


def test_statements_count_a_priced_owner_leg_as_part_of_its_call(session):
    legs = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
    for leg_id in legs.values():
        ledger.post_charge_for_leg(session, leg_id, policy=PRICED)
    period = Period(NOV_20_2PM_SYDNEY - timedelta(hours=1), NOV_20_2PM_SYDNEY + timedelta(hours=1))
    lines = charge_lines(session, period, ZoneInfo("Australia/Sydney"))
    assert sorted(line.label for line in lines) == ["local", "your extension's leg"]
    total = totals(lines)
    assert (total.calls, total.duration_s, total.gross_minor) == (1, 95, 13 + 12)
    assert ",001002,internal,125,180,0.11,0.01,0.12," in statement_csv(lines)


def test_the_owner_portal_and_the_api_show_the_owner_leg_plainly(world):
    app = world.client.app
    for router, probe in (
        (billing_portal.router, "/portal/billing"),
        (billing_api.router, "/api/v1/billing/charges"),
    ):
        if world.client.get(probe).status_code == 404:  # until app.py mounts them itself
            app.include_router(router)
    with world.sessions() as session, session.begin():
        import_platform_deck(session)
        legs = add_legs(session, dispatch(session, PRICED), owner_s=125, visitor_s=95)
        for leg_id in legs.values():
            ledger.post_charge_for_leg(session, leg_id, policy=PRICED)
    page = world.client.get("/portal/login")
    world.client.post(
        "/portal/login",
        data={
            "csrf": form_token(page.text, "csrf"),
            "email": "alice@example.com",
            "password": PASSWORD,
        },
    )
    page = world.client.get("/portal/billing?month=2026-11")
    assert page.status_code == 200
    assert '<td data-label="Destination">your extension&#39;s leg</td>' in page.text
    assert re.search(r"<dt>Calls</dt><dd>1</dd>", page.text)


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize("field", ["owner_leg_flat_minor", "owner_leg_per_minute_minor"])
@pytest.mark.parametrize("value", [-1, 100_001])
def test_an_owner_leg_price_out_of_range_is_refused_by_name(field, value):
    with pytest.raises(ValidationError, match=field):
        BillingSettings(**{field: value})


def test_the_owner_leg_price_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CALLNOW_BILLING__OWNER_LEG_PER_MINUTE_MINOR", "3")
    policy = policy_from(Settings().billing)
    assert (policy.owner_leg.flat_minor, policy.owner_leg.per_minute_minor) == (0, 3)
