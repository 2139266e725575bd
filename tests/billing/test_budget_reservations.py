"""Calls running at once hold what they may cost, so together they cannot overrun a budget."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing import ledger
from callnow.billing.budgets import budget_for, set_budget
from callnow.bootstrap import seed_default_deck
from callnow.domain.rating import BudgetRefused, CallAllowed
from callnow.domain.request_state import RequestState
from callnow.store import profiles, provisioning
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest
from callnow.store.requests import move
from tests.support.world import queued_request

NOW = datetime.now(UTC)


def queued_mobile_request(session, callnow_id: str, number: str):
    return queued_request(session, callnow_id, number, now=NOW)


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
        move(first, RequestState.CALLING_VISITOR)
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


# ---------------------------------------------------------------------------- two engines


@pytest.fixture
def pg_sessions(postgresql_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """PostgreSQL with Alice's tenant holding two extensions, and the default deck."""
    with transaction(postgresql_sessions) as session:
        seed_default_deck(session)
        second = provisioning.create_extension(
            session,
            profiles.by_callnow_id(session, "alice").extension.tenant,
            internal_number="001003",
            external_number="0290371235",
        )
        provisioning.enable_callnow(session, second, "alice2")
    return postgresql_sessions


def backends_waiting_on_a_lock(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


@pytest.mark.postgres
def test_two_engines_cannot_both_reserve_the_last_of_a_tenant_budget(pg_sessions):
    """Two engines claim a call each, for two extensions of one tenant, at the same instant.

    The tenant's 75c pays for one 90-second mobile call. The first engine plans its call and
    holds its claim transaction open; the second must then wait for the budget instead of
    reading it as still unspent, and once the first commits it is refused.
    """
    with transaction(pg_sessions) as session:
        tenant = profiles.by_callnow_id(session, "alice").extension.tenant
        set_budget(
            session, NOW - timedelta(minutes=1), tenant_id=tenant.id, prepaid_balance_minor=75
        )
        first = queued_mobile_request(session, "alice", "+61412345678").id
        second = queued_mobile_request(session, "alice2", "+61412345679").id
    first_planned, first_may_commit = threading.Event(), threading.Event()
    plans: dict[int, object] = {}
    errors: list[BaseException] = []

    def claim(request_id: int, hold: bool) -> None:
        try:
            with transaction(pg_sessions) as session:
                request = session.get(CallRequest, request_id)
                plan = ledger.plan_call(session, request_id, NOW)
                if isinstance(plan, ledger.CallPlan):
                    ledger.reserve(session, request, plan)
                session.flush()
                plans[request_id] = plan
                if hold:
                    first_planned.set()
                    first_may_commit.wait(timeout=30)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            first_planned.set()

    engine_one = threading.Thread(target=claim, args=(first, True))
    engine_one.start()
    assert first_planned.wait(timeout=30)
    engine_two = threading.Thread(target=claim, args=(second, False))
    engine_two.start()
    # The second engine's claim blocks on the budget rows the first one holds.
    waited = False
    for _ in range(300):
        if backends_waiting_on_a_lock(pg_sessions):
            waited = True
            break
        engine_two.join(timeout=0.05)
        if not engine_two.is_alive():
            break  # it did not wait at all
    first_may_commit.set()
    engine_one.join()
    engine_two.join()
    assert errors == []
    assert isinstance(plans[first], ledger.CallPlan) and plans[first].reserved_minor == 75
    assert isinstance(plans[second], BudgetRefused)
    assert waited
    with pg_sessions() as session:
        held = session.scalars(select(CallRequest.reserved_minor).order_by(CallRequest.id)).all()
        assert held == [75, None]
