"""Billing in the owner portal and the Call API, with two owners who must never see each other's
charges, and a platform admin who sees spend per tenant and manages the decks."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from callnow.billing import ledger
from callnow.store import accounts, provisioning
from callnow.store.billing_models import RateDeckRow
from callnow.store.models import User
from callnow.web import billing_api, billing_portal
from tests.billing.test_ledger import (
    LOCAL,
    MOBILE,
    NOV_20_2PM_SYDNEY,
    add_finished_call,
    deck_csv,
    import_platform_deck,
)
from tests.support.world import PASSWORD
from tests.web.helpers import form_token

ADMIN = "admin@example.com"


@pytest.fixture
def billing(world):
    """The world with the billing routers mounted (until app.py includes them itself), a
    platform deck, an admin, and charged calls of November 2026 for both owners."""
    app = world.client.app
    if world.client.get("/portal/billing").status_code == 404:
        app.include_router(billing_portal.router)
    if world.client.get("/api/v1/billing/charges").status_code == 404:
        app.include_router(billing_api.router)
    with world.sessions() as session, session.begin():
        provisioning.create_user(session, ADMIN, PASSWORD, role="platform_admin")
        import_platform_deck(session)
        calls = [
            ("alice", LOCAL, NOV_20_2PM_SYDNEY, 300, "Mary Local"),  # 0.13
            ("alice", MOBILE, NOV_20_2PM_SYDNEY, 95, "Mo Bile"),  # 0.79
            ("alice", MOBILE, datetime(2026, 11, 3, 1, 0, tzinfo=UTC), 60, "Early Bird"),  # 0.50
            ("alice", MOBILE, datetime(2026, 10, 15, 1, 0, tzinfo=UTC), 60, "October Caller"),
            ("bob", MOBILE, NOV_20_2PM_SYDNEY, 95, "Zed Bobcaller"),  # 0.79
        ]
        for owner, number, answered, seconds, caller in calls:
            leg = add_finished_call(
                session, owner, number, answered_at=answered, seconds=seconds, caller=caller
            )
            ledger.post_charge_for_leg(session, leg)
        add_finished_call(session, "alice", MOBILE, answered_at=None, caller="Never Answered")
    return world


def log_in(world, email="alice@example.com"):
    world.client.cookies.clear()
    page = world.client.get("/portal/login")
    response = world.client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": email, "password": PASSWORD},
    )
    assert response.status_code == 303


def api_key(world, email):
    with world.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.email == email)).one()
        return {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}


# ---------------------------------------------------------------------------- owner portal


def test_billing_pages_need_a_login(billing):
    for path in ("/portal/billing", "/portal/billing/statement.csv?month=2026-11"):
        response = billing.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/portal/login"


def test_the_owner_sees_each_callback_and_the_months_totals(billing):
    log_in(billing)
    page = billing.client.get("/portal/billing?month=2026-11")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr><td data-label="When">(\d\d \w\w\w \d\d:\d\d \w+)</td>'
        r'<td data-label="Caller">([^<]*)</td>',
        page.text,
    )
    # On the owner's clock, with the zone named (Sydney is on daylight time in November).
    assert rows == [
        ("20 Nov 14:00 AEDT", "Mary Local"),
        ("20 Nov 14:00 AEDT", "Mo Bile"),
        ("03 Nov 12:00 AEDT", "Early Bird"),
    ]
    assert "mobile" in page.text and "local" in page.text and "1:35" in page.text
    totals = page.text[page.text.index('id="month-totals"') :]
    assert "<dt>Calls</dt><dd>3</dd>" in totals
    assert "<strong>AUD 1.42</strong>" in totals  # 0.13 + 0.79 + 0.50
    for hidden in ("Zed Bobcaller", "October Caller", "Never Answered"):
        assert hidden not in page.text


def test_the_day_chart_is_svg_with_the_same_figures_as_a_table(billing):
    log_in(billing)
    page = billing.client.get("/portal/billing?month=2026-11").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'role="img"' in svg and "<desc" in svg
    assert "<title>20 Nov: 2 calls</title>" in svg and "<title>03 Nov: 1 call</title>" in svg
    assert "<title>20 Nov: 0.92</title>" in svg
    assert len(re.findall(r"<rect ", svg)) == 4  # two days with calls, in two panels
    # Readable under the CSP and without scripts: the only script is the nav's count, a file.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and "style=" not in page
    table = page[page.index('id="daily-table"') : page.index('id="charges"')]
    assert "<tr><td>Fri 20 Nov</td><td>2</td><td>0.92</td></tr>" in table
    assert "<tr><td>Sat 21 Nov</td><td>0</td><td>0.00</td></tr>" in table
    assert table.count("<tr><td>") == 30


def test_another_month_and_a_bad_month(billing):
    log_in(billing)
    october = billing.client.get("/portal/billing?month=2026-10")
    assert "October Caller" in october.text and "Mary Local" not in october.text
    bad = billing.client.get("/portal/billing?month=2026-13")
    assert bad.status_code == 422 and "not a month like 2026-11" in bad.text


def test_bob_sees_only_his_own_callbacks(billing):
    log_in(billing, "bob@example.com")
    page = billing.client.get("/portal/billing?month=2026-11").text
    assert "Zed Bobcaller" in page
    for hidden in ("Mary Local", "Mo Bile", "Early Bird"):
        assert hidden not in page
    statement = billing.client.get("/portal/billing/statement.csv?month=2026-11").text
    assert [row["caller_name"] for row in csv.DictReader(io.StringIO(statement))] == [
        "Zed Bobcaller"
    ]


def test_the_statement_downloads_as_csv(billing):
    log_in(billing)
    response = billing.client.get("/portal/billing/statement.csv?month=2026-11")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="callnow-2026-11.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["caller_name"], r["gross"]) for r in rows] == [
        ("Early Bird", "0.50"),
        ("Mary Local", "0.13"),
        ("Mo Bile", "0.79"),
    ]


# ---------------------------------------------------------------------------- platform admin


def test_only_a_platform_admin_sees_the_platform_page(billing):
    log_in(billing)
    assert billing.client.get("/portal/billing/platform").status_code == 404
    assert billing.client.get("/portal/billing/platform/decks/1.csv").status_code == 404
    log_in(billing, ADMIN)
    page = billing.client.get("/portal/billing/platform?month=2026-11")
    assert page.status_code == 200
    spend = page.text[page.text.index('id="tenant-spend"') :]
    assert "<tr><td>Alice Pty</td><td>3</td><td>1.42</td></tr>" in spend
    assert "<tr><td>Bob Pty</td><td>1</td><td>0.79</td></tr>" in spend
    assert "<td>4</td><td>2.21</td>" in spend
    assert "Platform (default)" in page.text


def import_form(world, **fields):
    page = world.client.get("/portal/billing/platform")
    data = {"csrf": form_token(page.text, "csrf"), **fields}
    return world.client.post("/portal/billing/platform/decks", data=data)


def deck_count(world) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(RateDeckRow)) or 0


def test_the_admin_imports_a_deck_from_the_form_and_exports_it(billing):
    log_in(billing, ADMIN)
    response = import_form(
        billing,
        name="December",
        tenant_id="",
        effective_from="2026-12-01",
        csv_text=deck_csv("614,mobile,0,0.30,30,6,0"),
    )
    assert response.status_code == 303
    page = billing.client.get(response.headers["location"]).text
    assert "imported" in page and "December" in page
    assert "2026-12-01 00:00 AEDT" in page  # midnight in Sydney, on the reader's clock
    with billing.sessions() as session:
        deck_id = session.scalars(
            select(RateDeckRow.id).where(RateDeckRow.name == "December")
        ).one()
    exported = billing.client.get(f"/portal/billing/platform/decks/{deck_id}.csv")
    assert exported.status_code == 200 and "614,mobile,0.00,0.30,30,6,0.00" in exported.text


def test_a_deck_uploaded_as_a_file_for_a_tenant(billing):
    log_in(billing, ADMIN)
    page = billing.client.get("/portal/billing/platform")
    alice_id = re.search(r'<option value="(\d+)">Alice Pty</option>', page.text).group(1)
    response = billing.client.post(
        "/portal/billing/platform/decks",
        data={
            "csrf": form_token(page.text, "csrf"),
            "name": "Alice own",
            "tenant_id": alice_id,
            "effective_from": "2026-12-01",
        },
        files={"file": ("alice.csv", deck_csv("61,Alice,0,0.05,60,60,0").encode(), "text/csv")},
    )
    assert response.status_code == 303
    assert "Alice own" in billing.client.get("/portal/billing/platform").text


def test_a_bad_deck_from_the_form_shows_numbered_errors_and_imports_nothing(billing):
    log_in(billing, ADMIN)
    before = deck_count(billing)
    response = import_form(
        billing,
        name="Broken",
        tenant_id="",
        effective_from="2026-12-01",
        csv_text=deck_csv("614,mobile,0,0.30,30,6,0", "0614,bad,0,0.30,30,6,0"),
    )
    assert response.status_code == 422
    assert "line 3: prefix &#39;0614&#39; starts with 0" in response.text
    assert deck_count(billing) == before
    missing = import_form(billing, name="x", tenant_id="", effective_from="soon", csv_text="")
    assert missing.status_code == 422
    assert "2026-12-01" in missing.text and "paste the deck" in missing.text
    assert deck_count(billing) == before


def test_a_deck_import_without_the_form_token_is_refused(billing):
    log_in(billing, ADMIN)
    response = billing.client.post(
        "/portal/billing/platform/decks",
        data={"name": "x", "effective_from": "2026-12-01", "csv_text": deck_csv("61,x,0,1,1,1,0")},
    )
    assert response.status_code == 400
    assert deck_count(billing) == 1


# ---------------------------------------------------------------------------- Call API


def test_the_api_needs_a_key(billing):
    assert billing.client.get("/api/v1/billing/charges?month=2026-11").status_code == 401


def test_the_api_lists_only_the_callers_own_charges(billing):
    alice = billing.client.get(
        "/api/v1/billing/charges?month=2026-11", headers=api_key(billing, "alice@example.com")
    )
    assert alice.status_code == 200
    assert [c["caller_name"] for c in alice.json()] == ["Mary Local", "Mo Bile", "Early Bird"]
    assert alice.json()[1]["gross_minor"] == 79 and alice.json()[1]["billed_s"] == 96
    bob_key = api_key(billing, "bob@example.com")
    bob = billing.client.get("/api/v1/billing/charges?month=2026-11", headers=bob_key).json()
    assert [c["caller_name"] for c in bob] == ["Zed Bobcaller"]
    page = billing.client.get(
        "/api/v1/billing/charges?month=2026-11&limit=1&offset=1",
        headers=api_key(billing, "alice@example.com"),
    )
    assert [c["caller_name"] for c in page.json()] == ["Mo Bile"]


def test_the_api_statement_has_totals_days_and_charges(billing):
    key = api_key(billing, "alice@example.com")
    body = billing.client.get("/api/v1/billing/statement?month=2026-11", headers=key).json()
    assert body["month"] == "2026-11" and body["time_zone"] == "Australia/Sydney"
    assert body["totals"] == {
        "calls": 3,
        "duration_s": 455,
        "net_minor": 129,
        "tax_minor": 13,
        "gross_minor": 142,
    }
    assert len(body["days"]) == 30
    assert body["days"][19] == {"day": "2026-11-20", "calls": 2, "gross_minor": 92}
    assert [c["caller_name"] for c in body["charges"]] == ["Early Bird", "Mary Local", "Mo Bile"]
    as_csv = billing.client.get("/api/v1/billing/statement.csv?month=2026-11", headers=key)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.count("\n") == 4


@pytest.mark.parametrize("month", ["2026-13", "November", "1999-01"])
def test_the_api_refuses_a_month_it_cannot_read(billing, month):
    key = api_key(billing, "alice@example.com")
    assert (
        billing.client.get(f"/api/v1/billing/statement?month={month}", headers=key).status_code
        == 422
    )


# ---------------------------------------------------------------------------- money in view


def _extension_id(world, internal="001002"):
    from callnow.store.models import Extension

    with world.sessions() as session:
        return session.scalars(
            select(Extension.id).where(Extension.internal_number == internal)
        ).one()


def test_the_charges_page_shows_the_rate_card_from_the_deck_in_force(billing):
    log_in(billing)
    page = billing.client.get("/portal/billing").text
    card = page[page.index('id="rate-card-1"') :]
    assert '<th scope="row">A local call</th><td>12 cents</td>' in card
    assert '<th scope="row">A national call</th><td>10 cents a minute</td>' in card
    assert '<th scope="row">A mobile</th><td>45 cents a minute</td>' in card
    assert (
        '<th scope="row">United Kingdom (+44)</th>'
        "<td>5 cents a minute plus 10 cents to connect, at least 25 cents</td>"
    ) in card
    assert "Australia mobile (+614)" not in card  # home numbers are not international
    assert "No spending limit applies" in page


def test_the_owner_sees_their_budget_and_sets_a_lower_daily_cap_of_their_own(billing):
    from callnow.billing import budgets
    from callnow.store.billing_models import BudgetRow
    from callnow.store.models import utcnow

    extension = _extension_id(billing)
    with billing.sessions() as session, session.begin():
        budgets.set_budget(session, utcnow(), extension_id=extension, daily_cap_minor=500)
    log_in(billing)
    page = billing.client.get("/portal/billing").text
    assert "Daily cap from your provider, this extension" in page
    assert '<td data-label="Cap">AUD 5.00</td>' in page
    assert "At most your provider's 5.00." in page

    def set_cap(value):
        token = form_token(billing.client.get("/portal/billing").text, "csrf")
        return billing.client.post(
            "/portal/billing/daily-cap",
            data={"csrf": token, "extension_id": str(extension), "daily_cap": value},
        )

    too_high = set_cap("9.00")
    assert too_high.status_code == 422
    assert "can only be lower than your provider&#39;s, 5.00 a day" in too_high.text
    assert set_cap("2.x").status_code == 422
    assert set_cap("-1").status_code == 422
    saved = set_cap("2.00")
    assert saved.status_code == 303
    page = billing.client.get(saved.headers["location"]).text
    assert "Your daily cap is saved." in page
    assert "Your own daily cap</td>" in page and '<td data-label="Cap">AUD 2.00</td>' in page
    # The budget check before dialling is held to the owner's cap.
    with billing.sessions() as session:
        assert session.scalars(select(BudgetRow.owner_daily_cap_minor)).first() == 200
        budget = budgets.budget_for(session, extension, utcnow())
        assert budget.daily_cap_remaining_minor == 200
    # Someone else's extension is refused; an empty field removes the cap.
    other = set_cap("1.00")
    assert other.status_code == 303
    token = form_token(billing.client.get("/portal/billing").text, "csrf")
    bob = billing.client.post(
        "/portal/billing/daily-cap",
        data={
            "csrf": token,
            "extension_id": str(_extension_id(billing, "002001")),
            "daily_cap": "1",
        },
    )
    assert bob.status_code == 422 and "Choose one of your extensions." in bob.text
    assert set_cap("").status_code == 303
    with billing.sessions() as session:
        assert budgets.budget_for(session, extension, utcnow()).daily_cap_remaining_minor == 500
