"""Billing through real calls: the charge each callback posts, and budgets that end or stop calls.

The default platform deck prices Australian mobiles at 45c a minute, billed 30 s then per 6 s;
local calls are 12c flat; GST is 10%, rounded half-up once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.billing.budgets import budget_for, set_budget
from callnow.compose import create_app
from callnow.store import profiles
from callnow.store.billing_models import ChargeRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest
from tests.e2e.conftest import submit, wait_until_finished

pytestmark = pytest.mark.peers


def only_request_id(sessions) -> int:
    with sessions() as session:
        return session.scalars(select(CallRequest.id)).one()


def alice_extension_id(sessions) -> int:
    with sessions() as session:
        return profiles.by_callnow_id(session, "alice").extension_id


def test_a_mobile_callback_posts_exactly_its_per_minute_charge(callback_service):
    settings, sessions, _, trunk = callback_service("answer_info_dtmf_relay.xml", {"digit": "1"})
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, number="0412 345 678")
        assert wait_until_finished(sessions, only_request_id(sessions)) == "completed"
    with sessions() as session:
        visitor = session.scalars(select(CallLeg).where(CallLeg.role == "requester")).one()
        [charge] = session.scalars(select(ChargeRow)).all()
    assert 1 <= visitor.billable_seconds <= 3
    # Up to 30 s bills the first 30-second increment: 22.5c, rounded half-up to 23c; +2c GST.
    assert (charge.destination_class, charge.billed_s) == ("mobile", 30)
    assert (charge.net_minor, charge.tax_minor, charge.gross_minor) == (23, 2, 25)
    [invite] = trunk.received("INVITE")
    assert invite.request_uri.startswith("sip:+61412345678@")


def test_an_exhausted_budget_means_no_invite_reaches_the_trunk(callback_service):
    settings, sessions, owner, trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}
    )
    with transaction(sessions) as session:
        set_budget(
            session,
            datetime.now(UTC),
            extension_id=alice_extension_id(sessions),
            prepaid_balance_minor=0,
        )
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, number="0412 345 678")
        request_id = only_request_id(sessions)
        assert wait_until_finished(sessions, request_id) == "failed"
    assert trunk.received("INVITE") == []
    assert owner.received("INVITE") == []  # nobody is rung for a call that cannot be paid
    with sessions() as session:
        assert "budget" in session.get(CallRequest, request_id).events[-1].reason


# A real 90-second call plus setup needs more than the global per-test timeout.
@pytest.mark.timeout(300)
def test_a_budget_for_90_seconds_of_a_mobile_call_ends_the_bridged_call_at_90_seconds(
    callback_service,
):
    # 90 s bills 90 s: 67.5c → 68c + 7c GST = 75c. 91 s would bill 96 s: 72c + 7c = 79c.
    settings, sessions, _, trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}, max_call_s=3600
    )
    extension_id = alice_extension_id(sessions)
    with transaction(sessions) as session:
        set_budget(session, datetime.now(UTC), extension_id=extension_id, prepaid_balance_minor=75)
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, number="0412 345 678")
        assert wait_until_finished(sessions, only_request_id(sessions), timeout_s=150) == (
            "completed"
        )
    with sessions() as session:
        visitor = session.scalars(select(CallLeg).where(CallLeg.role == "requester")).one()
        [charge] = session.scalars(select(ChargeRow)).all()
        remaining = budget_for(session, extension_id, datetime.now(UTC))
    assert 89 <= visitor.billable_seconds <= 91
    assert charge.gross_minor <= 75
    assert remaining.prepaid_balance_minor is not None and remaining.prepaid_balance_minor >= 0
    assert len(trunk.received("BYE")) == 1  # CallNow ended the call when the budget ran out


def test_the_provider_sets_the_local_price_tax_and_currency(callback_service):
    from callnow.config import BillingSettings

    settings, sessions, _, _ = callback_service(
        "answer_info_dtmf_relay.xml",
        {"digit": "1"},
        billing=BillingSettings(currency_code="NZD", tax_rate="0.15", local_flat_minor=20),
    )
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, number="02 9037 5678")
        assert wait_until_finished(sessions, only_request_id(sessions)) == "completed"
    with sessions() as session:
        [charge] = session.scalars(select(ChargeRow)).all()
    assert (charge.destination_class, charge.currency) == ("local", "NZD")
    assert (charge.net_minor, charge.tax_minor, charge.gross_minor) == (20, 3, 23)


def test_a_priced_owner_leg_is_charged_beside_the_callback_it_rang_for(callback_service):
    from callnow.config import BillingSettings

    # 5c per answered owner leg plus 2c per started minute; the local call is 12c flat.
    settings, sessions, _, _ = callback_service(
        "answer_info_dtmf_relay.xml",
        {"digit": "1"},
        billing=BillingSettings(owner_leg_flat_minor=5, owner_leg_per_minute_minor=2),
    )
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, number="02 9037 5678")
        assert wait_until_finished(sessions, only_request_id(sessions)) == "completed"
        charges = wait_for_charges(sessions, 2)
    legs = {charge.destination_class: charge for charge in charges}
    assert sorted(legs) == ["internal", "local"]
    owner, visitor = legs["internal"], legs["local"]
    with sessions() as session:
        owner_leg = session.get(CallLeg, owner.call_leg_id)
        assert owner_leg is not None and owner_leg.role == "owner"
    # The owner's leg lasted under a minute: one started minute, 7c net + 1c GST (0.7c).
    assert 1 <= owner.duration_s < 60 and owner.billed_s == 60
    assert (owner.net_minor, owner.tax_minor, owner.gross_minor) == (7, 1, 8)
    assert (owner.number, owner.request_id) == ("001002", visitor.request_id)
    assert (visitor.net_minor, visitor.tax_minor, visitor.gross_minor) == (12, 1, 13)


def wait_for_charges(sessions, count: int, timeout_s: float = 10) -> list[ChargeRow]:
    """Charges are posted just after each leg is recorded, beside the request's last move."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as session:
            charges = list(session.scalars(select(ChargeRow).order_by(ChargeRow.id)))
        if len(charges) >= count or time.monotonic() > deadline:
            return charges
        time.sleep(0.1)
