"""The admin as an operator reads it: every list and detail page shows words (labels without
underscores, values without Python reprs), records that must not be edited cannot be, the
dashboard counts today, and a new tenant starts with the CLI's defaults."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callnow.cli import admin as cli_admin
from callnow.store import audit, dashboard, provisioning
from callnow.store.billing_models import BudgetRow, ChargeRow
from callnow.store.models import (
    AvailabilityWindow,
    CallLeg,
    DoNotCall,
    Profile,
    RuleRow,
    Tenant,
)
from tests.support.world import queued_request
from tests.web.test_admin import admin_form_token, admin_login, make_admin

REPR = re.compile(r"object at 0x|<callnow\.|InstrumentedList|\{\}|\[\]")
HEADER = re.compile(r"<th[^>]*>(.*?)</th>", re.S)


def seed_records(world) -> int:
    """One request with history, both legs, a charge; a budget, rules, hours, a listed number."""
    now = datetime.now(UTC)
    with world.sessions() as session, session.begin():
        request = queued_request(session, "alice", "+61290375678", now=now)
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "alice")).one()
        session.add_all(
            [
                CallLeg(
                    request_id=request.id,
                    role="owner",
                    destination="1001",
                    started_at=now,
                    answered_at=now,
                    ended_at=now + timedelta(seconds=30),
                    disposition="answered",
                    sip_code=200,
                    billable_seconds=30,
                ),
                RuleRow(
                    profile_id=profile.id,
                    position=1,
                    action="reject",
                    name_match="contains",
                    name_value="spam",
                ),
                AvailabilityWindow(
                    profile_id=profile.id, weekday=0, start_minute=540, end_minute=1020
                ),
                BudgetRow(extension_id=profile.extension_id, daily_cap_minor=1250),
                DoNotCall(e164="+61290379999", reason="asked"),
            ]
        )
        session.flush()
        leg = session.scalars(select(CallLeg).where(CallLeg.request_id == request.id)).one()
        session.add(
            ChargeRow(
                call_leg_id=leg.id,
                request_id=request.id,
                extension_id=profile.extension_id,
                tenant_id=profile.extension.tenant_id,
                number="+61290375678",
                destination_class="national_fixed",
                duration_s=30,
                billed_s=60,
                net_minor=100,
                tax_minor=10,
                gross_minor=110,
                currency="AUD",
                answered_at=now,
            )
        )
        audit.record(session, actor=None, action="profiles.update", subject="alice", details={})
        return request.id


def identities(world) -> list[str]:
    admin = world.client.app.state.admin if hasattr(world.client.app.state, "admin") else None
    if admin is not None:
        return [view.identity for view in admin._views if hasattr(view, "model")]
    return [
        "tenant", "user", "extension", "profile", "call-request", "call-leg",
        "charge-row", "audit-entry", "do-not-call", "budget-row",
    ]  # fmt: skip


@pytest.fixture
def admin_world(world):
    make_admin(world)
    admin_login(world, "root@example.com")
    world.request_id = seed_records(world)
    return world


def test_no_list_or_detail_page_shows_a_repr_or_a_snake_case_label(admin_world):
    world = admin_world
    for identity in identities(world):
        listing = world.client.get(f"/admin/{identity}/list")
        assert listing.status_code == 200, identity
        assert not REPR.search(listing.text), (identity, REPR.search(listing.text))
        search = re.search(r'<label[^>]*for="search"[^>]*>(.*?)</label>', listing.text, re.S)
        assert search is None or "_" not in search.group(1), (identity, search.group(1))
        headers = [re.sub(r"<[^>]+>", "", h).strip() for h in HEADER.findall(listing.text)]
        assert headers and not [h for h in headers if "_" in h], (identity, headers)
        first = re.search(rf'href="[^"]*/admin/{identity}/details/(\d+)"', listing.text)
        assert first, f"{identity} lists no rows"
        detail = world.client.get(f"/admin/{identity}/details/{first.group(1)}")
        assert detail.status_code == 200, identity
        assert not REPR.search(detail.text), (identity, REPR.search(detail.text))
        labels = [re.sub(r"<[^>]+>", "", h).strip() for h in HEADER.findall(detail.text)]
        assert not [h for h in labels if "_" in h], (identity, labels)


def test_a_profile_shows_its_rules_and_hours_as_words(admin_world):
    world = admin_world
    with world.sessions() as session:
        profile_id = session.scalars(select(Profile.id).where(Profile.callnow_id == "alice")).one()
    page = world.client.get(f"/admin/profile/details/{profile_id}").text
    assert "1. reject name contains spam" in page
    assert "Mon 09:00–17:00" in page


def test_a_request_page_shows_its_history_and_its_legs(admin_world):
    world = admin_world
    page = world.client.get(f"/admin/call-request/details/{world.request_id}").text
    assert "History" in page and "Queued" in page
    assert "Calls" in page and "Answered 200" in page
    assert "+61290375678" in world.client.get("/admin/call-request/list?search=5678").text
    assert "+61290375678" in world.client.get("/admin/call-request/list?search=alice").text
    assert "+61290375678" not in world.client.get("/admin/call-request/list?search=bob").text
    assert "No requests" not in world.client.get("/admin/").text


def test_money_is_shown_as_the_billing_policy_writes_it(admin_world):
    world = admin_world
    assert "1.10 AUD" in world.client.get("/admin/charge-row/list").text
    assert "12.50 AUD" in world.client.get("/admin/budget-row/list").text
    assert "1.10 AUD" in world.client.get("/admin/").text


@pytest.mark.parametrize("identity", ["call-request", "call-leg", "charge-row", "audit-entry"])
def test_records_under_invariants_cannot_be_created_or_edited(admin_world, identity):
    world = admin_world
    assert world.client.get(f"/admin/{identity}/create").status_code in (403, 404)
    assert world.client.get(f"/admin/{identity}/edit/1").status_code in (403, 404)
    page = world.client.get(f"/admin/{identity}/list").text
    assert f"/admin/{identity}/edit/" not in page and f"/admin/{identity}/create" not in page


def test_the_cli_and_the_admin_give_a_new_tenant_the_same_defaults(admin_world):
    world = admin_world
    cli = inspect.signature(cli_admin.create_tenant).parameters
    store = inspect.signature(provisioning.create_tenant).parameters
    assert cli["call_api"].default is True and store["call_api_access"].default is True
    form = world.client.get("/admin/tenant/create").text
    checkbox = re.search(r'<input[^>]*id="call_api_access"[^>]*>', form).group(0)
    assert "checked" in checkbox
    for field, value in (("region", "AU"), ("timezone", "Australia/Sydney")):
        assert cli[field].default == store[field].default == value
        assert re.search(
            rf'id="{field}"[^>]*value="{value}"|value="{value}"[^>]*id="{field}"', form
        )
    assert "Call API access" in form and "Call Api Access" not in form


def test_a_tenant_saved_in_the_admin_keeps_lists_as_lists_and_is_checked_like_the_cli(admin_world):
    world = admin_world
    form = {
        "name": "Carol Pty",
        "product_line": "pbx",
        "region": "nz",
        "timezone": "Pacific/Auckland",
        "call_api_access": "y",
        "extra_countries": "au, gb",
        "blocked_prefixes": "+61 190, 6113",
        "allowed_prefixes": "",
        "csrf_token": admin_form_token(world, "/admin/tenant/create"),
    }
    saved = world.client.post("/admin/tenant/create", data=form)
    assert saved.status_code in (302, 303), saved.text[-800:]
    with world.sessions() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.name == "Carol Pty")).one()
        assert (tenant.region, tenant.extra_countries, tenant.call_api_access) == (
            "NZ",
            ["AU", "GB"],
            True,
        )
        assert tenant.blocked_prefixes == ["6113", "61190"]
    form |= {"name": "Dan Pty", "extra_countries": "Narnia", "csrf_token": form["csrf_token"]}
    refused = world.client.post("/admin/tenant/create", data=form)
    assert refused.status_code == 400 and "Not a two-letter country code: Narnia" in refused.text
    form |= {"extra_countries": "", "blocked_prefixes": "61-x"}
    refused = world.client.post("/admin/tenant/create", data=form)
    assert refused.status_code == 400 and "is not a number prefix" in refused.text
    form |= {"blocked_prefixes": "", "timezone": "Mars/Olympus"}
    refused = world.client.post("/admin/tenant/create", data=form)
    assert refused.status_code == 400 and "not a known time zone" in refused.text


def test_the_do_not_call_list_takes_numbers_as_the_cli_does(admin_world):
    world = admin_world
    token = admin_form_token(world, "/admin/do-not-call/create")
    form = {"e164": "02 9037 1111", "reason": "asked by phone", "csrf_token": token}
    assert world.client.post("/admin/do-not-call/create", data=form).status_code in (302, 303)
    with world.sessions() as session:
        assert session.scalars(
            select(DoNotCall.reason).where(DoNotCall.e164 == "+61290371111")
        ).one()
    again = world.client.post("/admin/do-not-call/create", data=form)
    assert again.status_code == 400 and "on the list already" in again.text
    form["e164"] = "not a number"
    assert world.client.post("/admin/do-not-call/create", data=form).status_code == 400


def test_the_day_summary_counts_only_that_day(world):
    now = datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with world.sessions() as session, session.begin():
        queued_request(session, "alice", "+61290375678", now=now)
        queued_request(session, "bob", "+61290375679", now=start - timedelta(minutes=1))
    with world.sessions() as session:
        day = dashboard.day_summary(session, start, start + timedelta(days=1))
        assert (day.requests, day.calls, day.failures, day.spend_minor) == (1, 0, 0, {})


def test_a_budget_is_set_in_the_admin_as_the_cli_sets_it(admin_world):
    world = admin_world
    with world.sessions() as session:
        budget_id = session.scalars(select(BudgetRow.id)).one()
    path = f"/admin/budget-row/edit/{budget_id}"
    page = world.client.get(path).text
    assert 'value="12.50"' in page  # minor units shown as an amount
    form = {
        "daily_cap_minor": "20.00",
        "prepaid_balance_minor": "5",
        "credit_limit_minor": "",
        "csrf_token": admin_form_token(world, path),
    }
    assert world.client.post(path, data=form).status_code in (302, 303)
    with world.sessions() as session:
        row = session.get(BudgetRow, budget_id)
        assert (row.daily_cap_minor, row.prepaid_balance_minor, row.credit_limit_minor) == (
            2000,
            500,
            None,
        )
        assert row.balance_set_at is not None  # what is left is counted from now
        assert [e for e in audit.recent(session) if e.action == "budget.update"]
    form |= {"daily_cap_minor": "-3", "csrf_token": admin_form_token(world, path)}
    assert world.client.post(path, data=form).status_code == 400
    with world.sessions() as session:
        assert session.get(BudgetRow, budget_id).daily_cap_minor == 2000
