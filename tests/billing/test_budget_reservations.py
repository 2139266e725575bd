"""Calls running at once hold what they may cost, so together they cannot overrun a budget."""

from datetime import UTC, datetime, timedelta

from callnow.billing import ledger
from callnow.billing.budgets import budget_for, set_budget
from callnow.bootstrap import seed_default_deck
from callnow.domain.rating import BudgetRefused, CallAllowed
from callnow.domain.request_state import RequestState
from callnow.store import profiles, provisioning
from callnow.store.models import CallLeg
from callnow.store.requests import move, record_new

NOW = datetime.now(UTC)


def queued_mobile_request(session, callnow_id: str, number: str):
    return record_new(
        session,
        profile=profiles.by_callnow_id(session, callnow_id),
        caller_name="M",
        number_typed=number,
        number_e164=number,
        source_address="t",
        user_agent="",
        channel="web",
        decision="accept",
        reason="default",
        final_state=RequestState.QUEUED,
        now=NOW,
    )


def test_a_second_call_cannot_spend_what_a_running_call_holds(world):
    with world.sessions() as session, session.begin():
        seed_default_deck(session)
        alice = profiles.by_callnow_id(session, "alice")
        tenant = alice.extension.tenant
        second = provisioning.create_extension(
            session, tenant, internal_number="001003", external_number="0290371235"
        )
        provisioning.enable_callnow(session, second, "alice2")
        # The tenant prepaid 75c: exactly 90 s of a mobile call (68c + 7c GST).
        set_budget(
            session, NOW - timedelta(minutes=1), tenant_id=tenant.id, prepaid_balance_minor=75
        )
        first = queued_mobile_request(session, "alice", "+61412345678")
        plan = ledger.plan_call(session, first.id, NOW)
        assert isinstance(plan, ledger.CallPlan) and plan.max_duration_s == 90
        assert plan.reserved_minor == 75
        first.reserved_minor = plan.reserved_minor
        move(first, RequestState.CALLING_OWNER)
        move(first, RequestState.CALLING_REQUESTER)
        other = queued_mobile_request(session, "alice2", "+61412345679")
        # While the first call may still use all of it, the second is refused.
        assert isinstance(ledger.check_before_dialling(session, other.id, NOW), BudgetRefused)
        first_id, other_id, extension_id = first.id, other.id, alice.extension_id

    with world.sessions() as session, session.begin():
        first = session.get(type(other), first_id)
        # The first call lasted 10 s: its leg ends, it completes, and its charge is posted.
        leg = CallLeg(
            request_id=first_id,
            role="requester",
            destination="+61412345678",
            started_at=NOW,
            answered_at=NOW,
            ended_at=NOW + timedelta(seconds=10),
            disposition="answered",
            billable_seconds=10,
        )
        session.add(leg)
        move(first, RequestState.CONNECTED)
        move(first, RequestState.COMPLETED)
        session.flush()
        # Ended but not yet charged: the reservation still holds.
        assert budget_for(session, extension_id, NOW).prepaid_balance_minor == 0
        ledger.post_charge_for_leg(session, leg.id)
        # Charged 25c (30 s billed): the rest of the prepaid balance is free again.
        assert budget_for(session, extension_id, NOW).prepaid_balance_minor == 50
        allowed = ledger.check_before_dialling(session, other_id, NOW)
        # 50c buys 60 s of a mobile (45c + 5c GST); 66 s would cost 55c.
        assert isinstance(allowed, CallAllowed) and allowed.max_duration_s == 60
