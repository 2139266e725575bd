"""The billing ledger against a real database (SQLite and PostgreSQL): decks, charges, budgets.

Finished calls are simulated by inserting CallLeg rows as the engine writes them. The helpers at
the top are shared with the CLI and web tests.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing import deck_store, ledger
from callnow.billing.budgets import budget_for, set_budget
from callnow.billing.deck_csv import HEADER, DeckImportFailed
from callnow.domain.rating import (
    Budget,
    BudgetRefusalReason,
    BudgetRefused,
    CallAllowed,
    FlatRate,
)
from callnow.store.billing_models import ChargeRow, RateDeckRow
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallLeg, CallRequest, Extension, Profile, Tenant
from tests.support.world import seed_two_owners

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
NOV_20_2PM_SYDNEY = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 14:00 AEDT
HEADER_LINE = ",".join(HEADER)
PLATFORM_DECK = "\n".join(
    [
        HEADER_LINE,
        "61,Australia fixed,0,0.10,60,60,0",
        "614,Australia mobile,0,0.45,30,6,0",
        "44,United Kingdom,0.10,0.05,1,1,0.25",
    ]
)
LOCAL = "+61290375678"  # Sydney (02), like Alice's external number +61 2 9037 1234
MOBILE = "+61412345678"
UK = "+442079460000"
PREMIUM = "+611900123456"


def deck_csv(*rows: str) -> str:
    return "\n".join([HEADER_LINE, *rows]) + "\n"


# ---------------------------------------------------------------------------- shared helpers


def extension_id(session: Session, internal: str) -> int:
    return session.scalars(select(Extension.id).where(Extension.internal_number == internal)).one()


def tenant_id(session: Session, name: str) -> int:
    return session.scalars(select(Tenant.id).where(Tenant.name == name)).one()


def import_platform_deck(session: Session, text: str = PLATFORM_DECK, at=JAN_1) -> RateDeckRow:
    deck = ledger.import_deck(session, text, None, "Platform", at)
    assert isinstance(deck, RateDeckRow), deck
    return deck


def add_request(session: Session, callnow_id: str, number: str, caller: str = "Mary") -> int:
    profile = session.scalars(select(Profile).where(Profile.callnow_id == callnow_id)).one()
    request = CallRequest(
        token=secrets.token_urlsafe(16),
        profile_id=profile.id,
        caller_name=caller,
        number_typed=number,
        number_e164=number,
        state="completed",
        decision="accept",
    )
    session.add(request)
    session.flush()
    return request.id


def add_finished_call(
    session: Session,
    callnow_id: str,
    number: str,
    *,
    answered_at: datetime | None,
    seconds: int = 0,
    caller: str = "Mary",
) -> int:
    """A callback as the engine records it: the owner leg and the visitor leg, both ended.
    Returns the visitor leg's id. `answered_at` None: the visitor never answered."""
    request_id = add_request(session, callnow_id, number, caller)
    started = (answered_at or NOV_20_2PM_SYDNEY) - timedelta(seconds=20)
    owner_answered = started - timedelta(seconds=10)
    ended = (answered_at or started + timedelta(seconds=30)) + timedelta(seconds=seconds)
    session.add(
        CallLeg(
            request_id=request_id,
            role="owner",
            destination="001002",
            started_at=owner_answered - timedelta(seconds=5),
            answered_at=owner_answered,
            ended_at=ended,
            sip_code=200,
            disposition="answered",
            billable_seconds=int((ended - owner_answered).total_seconds()),
        )
    )
    leg = CallLeg(
        request_id=request_id,
        role="requester",
        destination=number,
        started_at=started,
        ringing_at=started + timedelta(seconds=2),
        answered_at=answered_at,
        ended_at=ended,
        sip_code=200 if answered_at else 486,
        disposition="answered" if answered_at else "busy",
        billable_seconds=seconds if answered_at else 0,
    )
    session.add(leg)
    session.flush()
    return leg.id


def owner_leg_of(session: Session, visitor_leg_id: int) -> int:
    request_id = session.get(CallLeg, visitor_leg_id).request_id  # type: ignore[union-attr]  # exists
    return session.scalars(
        select(CallLeg.id).where(CallLeg.request_id == request_id, CallLeg.role == "owner")
    ).one()


def charge_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ChargeRow)) or 0


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        seed_two_owners(session)
    yield factory
    engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with transaction(sessions) as session:
        import_platform_deck(session)
        yield session


# ---------------------------------------------------------------------------- charges


def test_a_local_call_costs_12_cents_plus_gst_whatever_its_length(session):
    leg = add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=600)
    charge = ledger.post_charge_for_leg(session, leg)
    assert charge is not None
    assert (charge.destination_class, charge.net_minor, charge.tax_minor, charge.gross_minor) == (
        "local",
        12,
        1,
        13,
    )
    assert charge.deck_id is None and charge.prefix is None
    assert charge.extension_id == extension_id(session, "001002")
    assert charge.tenant_id == tenant_id(session, "Alice Pty")
    assert charge.duration_s == 600 and charge.currency == "AUD"


def test_a_mobile_call_is_rated_per_minute_with_its_increments(session):
    # 95 s at 30/6 bills 96 s; 0.45 a minute * 96 / 60 = 0.72, GST 0.072 -> 0.07.
    leg = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95)
    charge = ledger.post_charge_for_leg(session, leg)
    assert charge is not None
    assert (charge.destination_class, charge.billed_s, charge.net_minor, charge.gross_minor) == (
        "mobile",
        96,
        72,
        79,
    )
    assert charge.prefix == "614"
    assert charge.answered_at == NOV_20_2PM_SYDNEY


def test_the_same_sydney_number_is_national_for_a_melbourne_owner(session):
    leg = add_finished_call(session, "bob", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=61)
    charge = ledger.post_charge_for_leg(session, leg)
    assert charge is not None
    assert (charge.destination_class, charge.billed_s, charge.net_minor) == (
        "national_fixed",
        120,
        20,
    )


def test_posting_twice_returns_the_first_charge_and_bills_once(session):
    leg = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95)
    first = ledger.post_charge_for_leg(session, leg)
    second = ledger.post_charge_for_leg(session, leg)
    assert first is not None and second is not None
    assert second.id == first.id
    assert charge_count(session) == 1


def test_losing_the_insert_race_returns_the_winners_charge(sessions, monkeypatch):
    with transaction(sessions) as session:
        import_platform_deck(session)
        leg = add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=5)
    with transaction(sessions) as session:
        winner = ledger.post_charge_for_leg(session, leg)
    assert winner is not None
    # The loser read "no charge yet" just before the winner committed.
    real = ledger.charge_of_leg
    reads: list[int] = []

    def first_read_is_stale(session: Session, leg_id: int) -> ChargeRow | None:
        reads.append(leg_id)
        return None if len(reads) == 1 else real(session, leg_id)

    monkeypatch.setattr(ledger, "charge_of_leg", first_read_is_stale)
    with transaction(sessions) as session:
        loser = ledger.post_charge_for_leg(session, leg)
        assert loser is not None and loser.id == winner.id
        assert len(reads) == 2  # the stale read, then the re-read after the refused insert
        assert charge_count(session) == 1


def test_concurrent_posters_of_one_leg_leave_exactly_one_charge(sessions):
    with transaction(sessions) as session:
        import_platform_deck(session)
        leg = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95)
    start = threading.Barrier(4)
    results: list[int | None] = []
    errors: list[BaseException] = []

    def post() -> None:
        start.wait()
        try:
            charge = ledger.post_charge_with_retry(sessions, leg, attempts=20)
            results.append(charge.id if charge else None)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1 and results[0] is not None
    with sessions() as session:
        assert charge_count(session) == 1


def test_the_sweep_posts_what_a_crash_left_unposted_and_only_that(sessions):
    with transaction(sessions) as session:
        import_platform_deck(session)
        posted_before = add_finished_call(
            session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=5
        )
        ledger.post_charge_for_leg(session, posted_before)
        # The engine recorded these legs, then died before posting their charges.
        lost = [
            add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95),
            add_finished_call(session, "bob", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=5),
        ]
        premium = add_finished_call(
            session, "alice", PREMIUM, answered_at=NOV_20_2PM_SYDNEY, seconds=5
        )
        add_finished_call(session, "alice", MOBILE, answered_at=None)
    result = ledger.post_missing_charges(sessions, batch=1)
    assert len(result.posted) == 2 and result.unrateable == (premium,)
    again = ledger.post_missing_charges(sessions)
    assert again.posted == () and again.unrateable == (premium,)
    with sessions() as session:
        charged = set(session.scalars(select(ChargeRow.call_leg_id)))
        assert charged == {posted_before, *lost}


def test_unanswered_and_owner_legs_cost_nothing(session):
    busy = add_finished_call(session, "alice", MOBILE, answered_at=None)
    answered = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=9)
    assert ledger.post_charge_for_leg(session, busy) is None
    assert ledger.post_charge_for_leg(session, owner_leg_of(session, answered)) is None
    assert charge_count(session) == 0


def test_a_leg_still_up_is_not_posted_until_it_ends(session):
    leg_id = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=9)
    leg = session.get(CallLeg, leg_id)
    leg.ended_at = None
    assert ledger.post_charge_for_leg(session, leg_id) is None
    leg.ended_at = NOV_20_2PM_SYDNEY + timedelta(seconds=9)
    assert ledger.post_charge_for_leg(session, leg_id) is not None


def test_an_answered_premium_leg_is_refused_and_nothing_is_posted(session):
    leg = add_finished_call(session, "alice", PREMIUM, answered_at=NOV_20_2PM_SYDNEY, seconds=9)
    with pytest.raises(ledger.UnrateableLeg):
        ledger.post_charge_for_leg(session, leg)
    assert charge_count(session) == 0


def test_an_unknown_leg_is_an_error_not_a_free_call(session):
    with pytest.raises(LookupError):
        ledger.post_charge_for_leg(session, 987654)


# ---------------------------------------------------------------------------- decks


def test_a_bad_deck_imports_nothing_and_the_old_deck_stays_in_force(session):
    decks_before = session.scalar(select(func.count()).select_from(RateDeckRow))
    result = ledger.import_deck(
        session,
        deck_csv("614,cheaper mobile,0,0.20,30,6,0", "61x,bad,0,0.10,60,60,0", "44,uk,0,-1,1,1,0"),
        None,
        "Cheaper",
        datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert isinstance(result, DeckImportFailed)
    assert [error.line for error in result.errors] == [3, 4]
    assert session.scalar(select(func.count()).select_from(RateDeckRow)) == decks_before
    leg = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60)
    charge = ledger.post_charge_for_leg(session, leg)
    assert charge is not None and charge.net_minor == 45  # still 0.45 a minute


def test_two_decks_of_one_owner_may_not_start_at_the_same_instant(session):
    result = ledger.import_deck(session, PLATFORM_DECK, None, "Again", JAN_1)
    assert isinstance(result, DeckImportFailed)
    assert "already takes effect" in str(result.errors[0])


def test_a_call_is_rated_with_the_deck_in_force_when_it_was_answered(session):
    cheaper_from = datetime(2026, 11, 15, tzinfo=UTC)
    import_platform_deck(session, deck_csv("614,mobile,0,0.30,60,60,0"), cheaper_from)
    before = add_finished_call(
        session, "alice", MOBILE, answered_at=cheaper_from - timedelta(seconds=1), seconds=60
    )
    at_start = add_finished_call(session, "alice", MOBILE, answered_at=cheaper_from, seconds=60)
    assert ledger.post_charge_for_leg(session, before).net_minor == 45
    assert ledger.post_charge_for_leg(session, at_start).net_minor == 30


def test_a_tenant_deck_overrides_the_platform_deck_for_that_tenant_only(session):
    alice_tenant = tenant_id(session, "Alice Pty")
    own = ledger.import_deck(
        session, deck_csv("61,Alice's rates,0,0.05,60,60,0"), alice_tenant, "Alice", JAN_1
    )
    assert isinstance(own, RateDeckRow)
    alice = ledger.post_charge_for_leg(
        session,
        add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60),
    )
    bob = ledger.post_charge_for_leg(
        session,
        add_finished_call(session, "bob", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60),
    )
    assert (alice.deck_id, alice.prefix, alice.net_minor) == (own.id, "61", 5)
    assert (bob.prefix, bob.net_minor) == ("614", 45)
    # Decks are not merged: Alice's deck has no UK rate, so her UK call cannot be priced.
    uk = add_finished_call(session, "alice", UK, answered_at=NOV_20_2PM_SYDNEY, seconds=60)
    with pytest.raises(ledger.UnrateableLeg):
        ledger.post_charge_for_leg(session, uk)


def test_an_exported_deck_imports_back_to_the_same_prices(session):
    deck = session.scalars(select(RateDeckRow)).one()
    text = ledger.export_deck(session, deck.id)
    assert text is not None and text.startswith(HEADER_LINE)
    again = ledger.import_deck(session, text, None, "Copy", datetime(2027, 1, 1, tzinfo=UTC))
    assert isinstance(again, RateDeckRow)
    assert list(deck_store.load_deck(session, again.id)) == list(
        deck_store.load_deck(session, deck.id)
    )
    assert ledger.export_deck(session, 424242) is None


def test_the_full_rater_and_the_per_number_rater_agree(session):
    rater = ledger.load_rater(session)
    for number, cls in ((MOBILE, "mobile"), (UK, "international")):
        leg = add_finished_call(session, "alice", number, answered_at=NOV_20_2PM_SYDNEY, seconds=95)
        posted = ledger.post_charge_for_leg(session, leg)
        expected = rater.rate(number, posted.destination_class, NOV_20_2PM_SYDNEY, 95)
        assert (posted.destination_class, posted.gross_minor) == (cls, expected.gross_minor)


# ---------------------------------------------------------------------------- budgets


def test_without_limits_the_budget_is_unlimited(session):
    budget = budget_for(session, extension_id(session, "001002"), NOV_20_2PM_SYDNEY)
    assert budget == Budget(None, None, None)


def test_the_daily_cap_counts_only_todays_charges_in_the_tenants_time_zone(session):
    alice = extension_id(session, "001002")
    set_budget(session, NOV_20_2PM_SYDNEY, extension_id=alice, daily_cap_minor=500)
    # 23:00 on the 19th in Sydney: yesterday, although the same UTC day as 00:30 below.
    yesterday = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    just_after_midnight = datetime(2026, 11, 19, 13, 30, tzinfo=UTC)  # 00:30 on the 20th
    for answered, number, seconds in (
        (yesterday, MOBILE, 95),
        (just_after_midnight, LOCAL, 30),
        (NOV_20_2PM_SYDNEY, MOBILE, 95),
    ):
        leg = add_finished_call(session, "alice", number, answered_at=answered, seconds=seconds)
        ledger.post_charge_for_leg(session, leg)
    # Bob's spending is his own.
    bob_leg = add_finished_call(session, "bob", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95)
    ledger.post_charge_for_leg(session, bob_leg)
    budget = budget_for(session, alice, NOV_20_2PM_SYDNEY + timedelta(hours=1))
    assert budget.daily_cap_remaining_minor == 500 - 13 - 79


def test_the_tenant_cap_and_the_extension_cap_both_apply_the_tighter_wins(session):
    alice = extension_id(session, "001002")
    set_budget(session, NOV_20_2PM_SYDNEY, extension_id=alice, daily_cap_minor=1000)
    set_budget(
        session, NOV_20_2PM_SYDNEY, tenant_id=tenant_id(session, "Alice Pty"), daily_cap_minor=100
    )
    ledger.post_charge_for_leg(
        session,
        add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=3),
    )
    assert budget_for(session, alice, NOV_20_2PM_SYDNEY).daily_cap_remaining_minor == 87


def test_a_prepaid_balance_counts_charges_posted_since_it_was_set(session):
    alice = extension_id(session, "001002")
    early = add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=3)
    ledger.post_charge_for_leg(session, early, now=NOV_20_2PM_SYDNEY + timedelta(minutes=1))
    set_budget(
        session,
        NOV_20_2PM_SYDNEY + timedelta(minutes=2),
        extension_id=alice,
        prepaid_balance_minor=200,
    )
    later = add_finished_call(
        session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY + timedelta(minutes=5), seconds=95
    )
    ledger.post_charge_for_leg(session, later, now=NOV_20_2PM_SYDNEY + timedelta(minutes=7))
    budget = budget_for(session, alice, NOV_20_2PM_SYDNEY + timedelta(minutes=8))
    assert budget.prepaid_balance_minor == 200 - 79


def test_an_exhausted_budget_refuses_the_call(session):
    alice = extension_id(session, "001002")
    set_budget(session, NOV_20_2PM_SYDNEY, extension_id=alice, daily_cap_minor=13)
    ledger.post_charge_for_leg(
        session,
        add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=3),
    )
    request = add_request(session, "alice", LOCAL)
    verdict = ledger.check_before_dialling(session, request, NOV_20_2PM_SYDNEY + timedelta(hours=1))
    assert verdict == BudgetRefused(BudgetRefusalReason.CANNOT_PAY_CONNECTION, 0, 13)


def test_a_budget_for_90_seconds_of_a_mobile_call_limits_it_to_90_seconds(session):
    # 90 s at 0.45/min, 30/6: net 0.675 -> 68c, GST 7c: 75c. 96 s would be 79c.
    alice = extension_id(session, "001002")
    set_budget(session, NOV_20_2PM_SYDNEY, extension_id=alice, prepaid_balance_minor=75)
    request = add_request(session, "alice", MOBILE)
    verdict = ledger.check_before_dialling(session, request, NOV_20_2PM_SYDNEY)
    assert verdict == CallAllowed(max_duration_s=90, limited_by_budget=True)


def test_without_a_budget_the_call_may_last_the_configured_maximum(session):
    request = add_request(session, "alice", MOBILE)
    verdict = ledger.check_before_dialling(
        session, request, NOV_20_2PM_SYDNEY, max_call_duration_s=1800
    )
    assert verdict == CallAllowed(max_duration_s=1800, limited_by_budget=False)


@pytest.mark.parametrize("number", [PREMIUM, "+8613800138000"])  # premium; China: no deck rate
def test_numbers_nothing_prices_are_refused_before_dialling(session, number):
    request = add_request(session, "alice", number)
    verdict = ledger.check_before_dialling(session, request, NOV_20_2PM_SYDNEY)
    assert isinstance(verdict, ledger.NotRateable)
    assert ledger.cost_phrase_for(session, request, NOV_20_2PM_SYDNEY) is None


def test_the_cost_phrase_tells_the_owner_the_tariff(session):
    local = add_request(session, "alice", LOCAL)
    mobile = add_request(session, "alice", MOBILE)
    assert ledger.cost_phrase_for(session, local, NOV_20_2PM_SYDNEY) == "a local call, 12 cents"
    assert ledger.cost_phrase_for(session, mobile, NOV_20_2PM_SYDNEY) == (
        "a mobile, 45 cents a minute"
    )


def test_the_quote_uses_the_flat_local_tariff(session):
    request = add_request(session, "alice", LOCAL)
    quote = ledger.quote_for_request(session, request, NOV_20_2PM_SYDNEY)
    assert quote.tariff == FlatRate(12)
