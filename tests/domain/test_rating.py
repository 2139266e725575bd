from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from callnow.domain.cost_phrase import describe_cost
from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import (
    PER_MINUTE,
    BillingPolicy,
    Budget,
    BudgetRefusalReason,
    BudgetRefused,
    CallAllowed,
    DeckSet,
    FlatRate,
    NoDeckInForce,
    NoRateForNumber,
    NoTariffForClass,
    OwnerLegRate,
    PremiumRefused,
    Quote,
    RateDeck,
    RateEntry,
    Rater,
    billed_seconds,
    default_tariffs,
    max_duration_for_budget,
    money_to_micros,
    most_a_call_costs,
    round_half_up,
)

C = DestinationClass
JAN = datetime(2026, 1, 1, tzinfo=UTC)
JUL = datetime(2026, 7, 1, tzinfo=UTC)
MOBILE = "+61412345678"
SYDNEY = "+61290375678"
MELBOURNE = "+61396001234"
LONDON = "+442079460000"


def entry(prefix: str, price: str, increments=(60, 60), connection="0", minimum="0", desc=""):
    return RateEntry.from_prices(
        prefix,
        desc or f"prefix {prefix}",
        connection_fee=connection,
        price_per_minute=price,
        increments=increments,
        minimum_charge=minimum,
    )


PLATFORM_ENTRIES = [
    entry("61", "0.10", desc="Australia fixed"),
    entry("614", "0.45", increments=(30, 6), desc="Australia mobile"),
    entry("44", "0.30", increments=(1, 1), desc="United Kingdom"),
    entry("4420", "0.05", increments=(1, 1), connection="0.10", desc="London"),
    entry("447", "0.60", increments=(60, 60), minimum="1.00", desc="UK mobile"),
    entry("6113", "0", connection="0.25", desc="13 numbers"),
]


def rater(*decks: RateDeck, tenants=None, policy: BillingPolicy | None = None) -> Rater:
    platform = decks or (RateDeck("platform-2026", JAN, PLATFORM_ENTRIES),)
    return Rater(DeckSet(platform, tenants), policy)


# ---------------------------------------------------------------- money primitives


def test_money_is_parsed_exactly_and_sub_micro_amounts_are_refused():
    assert money_to_micros("0.45") == 450_000
    assert money_to_micros(Decimal("0.000001")) == 1
    assert money_to_micros("12") == 12_000_000
    with pytest.raises(ValueError, match="decimal places"):
        money_to_micros("0.0000001")
    with pytest.raises(ValueError, match="finite"):
        money_to_micros("NaN")


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(0, 10, 0), (4, 10, 0), (5, 10, 1), (14, 10, 1), (15, 10, 2), (25, 10, 3), (1, 3, 0)],
)
def test_round_half_up(numerator: int, denominator: int, expected: int):
    assert round_half_up(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("duration", "increments", "billed"),
    [
        (0, (60, 60), 0),
        (1, (60, 60), 60),
        (60, (60, 60), 60),
        (61, (60, 60), 120),
        (0, (30, 6), 0),
        (1, (30, 6), 30),
        (30, (30, 6), 30),
        (31, (30, 6), 36),
        (36, (30, 6), 36),
        (37, (30, 6), 42),
        (1, (1, 1), 1),
        (61, (1, 1), 61),
        (5, (1, 60), 61),
    ],
)
def test_billed_seconds_follow_initial_then_subsequent_increments(duration, increments, billed):
    assert billed_seconds(duration, *increments) == billed


def test_negative_durations_are_a_bug_not_a_refund():
    with pytest.raises(ValueError):
        billed_seconds(-1, 60, 60)
    with pytest.raises(ValueError):
        rater().rate(MOBILE, C.MOBILE, JUL, -1)


# ---------------------------------------------------------------- rating each class


def test_local_call_is_12c_flat_plus_gst_whatever_its_length():
    for duration in (0, 1, 59, 3600):
        charge = rater().rate(SYDNEY, C.LOCAL, JUL, duration)
        assert (charge.net_minor, charge.tax_minor, charge.gross_minor) == (12, 1, 13)
        assert charge.deck_id is None and charge.prefix is None
        assert charge.billed_s == duration


@pytest.mark.parametrize(
    ("duration", "billed", "net"),
    [
        (0, 0, 0),  # answered then hung up: no connection fee, no minimum on this entry
        (1, 30, 23),  # 0.225 rounds half-up to 23c
        (30, 30, 23),
        (31, 36, 27),  # 0.27
        (36, 36, 27),
        (37, 42, 32),  # 0.315 -> 32c
        (90, 90, 68),  # 0.675 -> 68c
    ],
)
def test_mobile_per_minute_at_increment_edges(duration: int, billed: int, net: int):
    charge = rater().rate(MOBILE, C.MOBILE, JUL, duration)
    assert charge.billed_s == billed
    assert charge.net_minor == net
    assert charge.prefix == "614"
    assert charge.deck_id == "platform-2026"
    assert charge.gross_minor == charge.net_minor + charge.tax_minor


def test_national_fixed_uses_the_shorter_prefix():
    charge = rater().rate(MELBOURNE, C.NATIONAL_FIXED, JUL, 61)
    assert (charge.prefix, charge.billed_s, charge.net_minor) == ("61", 120, 20)


def test_connection_fee_applies_even_to_a_zero_second_answered_call():
    charge = rater().rate(LONDON, C.INTERNATIONAL, JUL, 0)
    assert (charge.prefix, charge.billed_s, charge.net_minor) == ("4420", 0, 10)
    one_minute = rater().rate(LONDON, C.INTERNATIONAL, JUL, 60)
    assert one_minute.net_minor == 15  # 0.10 connection + 0.05


def test_minimum_charge_applies_until_the_call_costs_more():
    uk_mobile = "+447400123456"
    assert rater().rate(uk_mobile, C.INTERNATIONAL, JUL, 0).net_minor == 100
    assert rater().rate(uk_mobile, C.INTERNATIONAL, JUL, 60).net_minor == 100  # 0.60 < 1.00
    assert rater().rate(uk_mobile, C.INTERNATIONAL, JUL, 61).net_minor == 120
    assert rater().rate(uk_mobile, C.INTERNATIONAL, JUL, 121).net_minor == 180


def test_per_second_billing_and_the_longest_prefix():
    charge = rater().rate("+441612345678", C.INTERNATIONAL, JUL, 61)
    assert (charge.prefix, charge.billed_s, charge.net_minor) == ("44", 61, 31)  # 0.305 -> 31


def test_special_numbers_are_priced_by_the_deck():
    charge = rater().rate("+61131234", C.SPECIAL, JUL, 600)
    assert (charge.prefix, charge.net_minor) == ("6113", 25)


def test_sub_cent_prices_are_kept_exact_until_the_single_rounding():
    deck = RateDeck("d", JAN, [entry("1", "0.0125", increments=(1, 1))])
    # 0.0125 $/min for 100 s = 0.0208333.. -> 2c; 120 s = 0.025 -> 3c (half-up, once)
    assert rater(deck).rate("+12125550123", C.INTERNATIONAL, JUL, 100).net_minor == 2
    assert rater(deck).rate("+12125550123", C.INTERNATIONAL, JUL, 120).net_minor == 3


def test_premium_is_never_rated():
    with pytest.raises(PremiumRefused):
        rater().rate("+611900123456", C.PREMIUM, JUL, 60)
    with pytest.raises(ValueError, match="premium"):
        BillingPolicy(tariffs={C.PREMIUM: FlatRate(1)})


def test_unpriced_numbers_and_classes_are_refused():
    with pytest.raises(NoRateForNumber):
        rater().rate("+12125550123", C.INTERNATIONAL, JUL, 60)
    policy = BillingPolicy(tariffs={C.LOCAL: FlatRate(12)})
    with pytest.raises(NoTariffForClass):
        rater(policy=policy).rate(MOBILE, C.MOBILE, JUL, 60)


# ---------------------------------------------------------------- tax and currency


def test_tax_rate_and_currency_are_configurable():
    policy = BillingPolicy(currency_code="NZD", tax_rate=Decimal("0.15"))
    charge = rater(policy=policy).rate(MOBILE, C.MOBILE, JUL, 90)
    assert (charge.net_minor, charge.tax_minor, charge.gross_minor) == (68, 10, 78)  # 10.2
    assert charge.currency_code == "NZD"


def test_tax_rounds_half_up_once_from_the_net():
    policy = BillingPolicy(tariffs={C.LOCAL: FlatRate(15)})
    charge = rater(policy=policy).rate(SYDNEY, C.LOCAL, JUL, 10)
    assert (charge.tax_minor, charge.gross_minor) == (2, 17)  # 1.5 -> 2


def test_zero_decimal_currency():
    policy = BillingPolicy(currency_code="JPY", minor_unit_exponent=0, tax_rate=Decimal(0))
    deck = RateDeck("yen", JAN, [entry("81", "12.5", increments=(60, 60))])
    assert rater(deck, policy=policy).rate("+81312345678", C.INTERNATIONAL, JUL, 60).net_minor == 13


# ---------------------------------------------------------------- deck precedence and dates


def test_the_deck_in_force_when_the_call_was_answered_prices_it():
    old = RateDeck("2026-01", JAN, [entry("614", "0.45")])
    new = RateDeck("2026-07", JUL, [entry("614", "0.30")])
    subject = rater(new, old)
    before = subject.rate(MOBILE, C.MOBILE, JUL - timedelta(microseconds=1), 60)
    at_switch = subject.rate(MOBILE, C.MOBILE, JUL, 60)
    assert (before.deck_id, before.net_minor) == ("2026-01", 45)
    assert (at_switch.deck_id, at_switch.net_minor) == ("2026-07", 30)


def test_no_deck_before_the_first_takes_effect():
    with pytest.raises(NoDeckInForce):
        rater().rate(MOBILE, C.MOBILE, JAN - timedelta(seconds=1), 60)


def test_effective_dates_compare_as_instants_across_time_zones():
    sydney_midnight = datetime(2026, 7, 1, tzinfo=timezone(timedelta(hours=10)))  # 30 Jun 14:00Z
    old = RateDeck("old", JAN, [entry("614", "0.45")])
    new = RateDeck("new", sydney_midnight, [entry("614", "0.30")])
    at = datetime(2026, 6, 30, 15, 0, tzinfo=UTC)
    assert rater(old, new).rate(MOBILE, C.MOBILE, at, 60).deck_id == "new"


def test_tenant_deck_overrides_the_platform_only_while_in_force():
    platform = RateDeck("platform", JAN, [entry("614", "0.45")])
    tenant = RateDeck("acme", JUL, [entry("614", "0.20")])
    subject = rater(platform, tenants={"acme": [tenant]})
    assert subject.rate(MOBILE, C.MOBILE, JUL, 60, tenant_id="acme").net_minor == 20
    june = JUL - timedelta(days=1)
    assert subject.rate(MOBILE, C.MOBILE, june, 60, tenant_id="acme").deck_id == "platform"
    assert subject.rate(MOBILE, C.MOBILE, JUL, 60, tenant_id="other").deck_id == "platform"
    assert subject.rate(MOBILE, C.MOBILE, JUL, 60).deck_id == "platform"


def test_a_tenant_deck_is_complete_not_merged_with_the_platform():
    platform = RateDeck("platform", JAN, PLATFORM_ENTRIES)
    tenant = RateDeck("acme", JAN, [entry("614", "0.20")])
    subject = rater(platform, tenants={"acme": [tenant]})
    with pytest.raises(NoRateForNumber, match="acme"):
        subject.rate(LONDON, C.INTERNATIONAL, JUL, 60, tenant_id="acme")


def test_deck_construction_refuses_ambiguity():
    with pytest.raises(ValueError, match="duplicate"):
        RateDeck("d", JAN, [entry("614", "0.45"), entry("614", "0.40")])
    with pytest.raises(ValueError, match="same instant"):
        DeckSet([RateDeck("a", JAN, []), RateDeck("b", JAN, [])])
    with pytest.raises(ValueError, match="timezone"):
        RateDeck("d", datetime(2026, 1, 1), [])
    with pytest.raises(ValueError, match="timezone"):
        rater().rate(MOBILE, C.MOBILE, datetime(2026, 7, 1), 60)


@pytest.mark.parametrize("prefix", ["", "06", "61a", "6" * 16, "６１"])
def test_rate_entries_refuse_bad_prefixes(prefix: str):
    with pytest.raises(ValueError, match="prefix"):
        entry(prefix, "0.10")


def test_rate_entries_refuse_negative_money_and_empty_increments():
    with pytest.raises(ValueError, match="price_per_minute"):
        entry("61", "-0.10")
    with pytest.raises(ValueError, match="subsequent_increment"):
        entry("61", "0.10", increments=(60, 0))


def test_longest_prefix_match():
    deck = RateDeck("d", JAN, [entry("4", "1"), entry("44", "2"), entry("44790", "3")])
    assert deck.find("447901234567").prefix == "44790"
    assert deck.find("447911234567").prefix == "44"
    assert deck.find("4912345").prefix == "4"
    assert deck.find("3312345") is None
    assert deck.find("44") is not None and deck.find("44").prefix == "44"


# ---------------------------------------------------------------- budgets before dialling


def mobile_quote() -> Quote:
    return rater().quote(MOBILE, C.MOBILE, JUL)


def test_a_budget_that_covers_90_seconds_of_a_mobile_call_yields_90_seconds():
    policy = BillingPolicy()
    assert rater().rate(MOBILE, C.MOBILE, JUL, 90).gross_minor == 75
    assert rater().rate(MOBILE, C.MOBILE, JUL, 91).gross_minor == 79  # billed 96 s
    allowed = max_duration_for_budget(
        Budget(prepaid_balance_minor=75), mobile_quote(), 3600, policy
    )
    assert allowed == CallAllowed(max_duration_s=90, limited_by_budget=True)


def test_the_tightest_of_the_limits_wins():
    budget = Budget(
        daily_cap_remaining_minor=75, prepaid_balance_minor=500, credit_remaining_minor=80
    )
    assert budget.available_minor == 75
    allowed = max_duration_for_budget(budget, mobile_quote(), 3600, BillingPolicy())
    assert allowed == CallAllowed(90, limited_by_budget=True)


def test_a_budget_that_cannot_pay_the_first_increment_refuses_the_call():
    refused = max_duration_for_budget(
        Budget(prepaid_balance_minor=24), mobile_quote(), 3600, BillingPolicy()
    )
    assert refused == BudgetRefused(BudgetRefusalReason.CANNOT_PAY_FIRST_INCREMENT, 24, 25)
    exactly = max_duration_for_budget(
        Budget(prepaid_balance_minor=25), mobile_quote(), 3600, BillingPolicy()
    )
    assert exactly == CallAllowed(30, limited_by_budget=True)


def test_a_budget_that_cannot_pay_the_connection_or_minimum_refuses_the_call():
    quote = rater().quote("+447400123456", C.INTERNATIONAL, JUL)  # minimum 1.00 net, 1.10 gross
    refused = max_duration_for_budget(
        Budget(credit_remaining_minor=109), quote, 3600, BillingPolicy()
    )
    assert refused == BudgetRefused(BudgetRefusalReason.CANNOT_PAY_CONNECTION, 109, 110)
    assert max_duration_for_budget(
        Budget(credit_remaining_minor=-5), quote, 3600, BillingPolicy()
    ) == BudgetRefused(BudgetRefusalReason.CANNOT_PAY_CONNECTION, -5, 110)


def test_minimum_charge_buys_time_up_to_where_the_rate_overtakes_it():
    quote = rater().quote("+447400123456", C.INTERNATIONAL, JUL)  # 0.60/min 60/60, min 1.00
    allowed = max_duration_for_budget(
        Budget(prepaid_balance_minor=110), quote, 3600, BillingPolicy()
    )
    assert allowed == CallAllowed(60, limited_by_budget=True)


def test_no_limits_or_a_large_budget_leave_the_platform_maximum():
    assert max_duration_for_budget(Budget(), mobile_quote(), 1800, BillingPolicy()) == CallAllowed(
        1800, limited_by_budget=False
    )
    rich = Budget(prepaid_balance_minor=1_000_000)
    assert max_duration_for_budget(rich, mobile_quote(), 1800, BillingPolicy()) == CallAllowed(
        1800, limited_by_budget=False
    )


def test_a_maximum_between_increments_is_kept_when_the_budget_covers_it():
    # 93 s bills 96 s: 0.72 net, 0.79 gross.
    allowed = max_duration_for_budget(
        Budget(prepaid_balance_minor=79), mobile_quote(), 93, BillingPolicy()
    )
    assert allowed == CallAllowed(93, limited_by_budget=False)


def test_a_maximum_shorter_than_the_first_increment_is_kept():
    allowed = max_duration_for_budget(
        Budget(prepaid_balance_minor=25), mobile_quote(), 10, BillingPolicy()
    )
    assert allowed == CallAllowed(10, limited_by_budget=False)


def test_flat_rate_budget_is_all_or_nothing():
    quote = rater().quote(SYDNEY, C.LOCAL, JUL)
    policy = BillingPolicy()
    assert max_duration_for_budget(Budget(prepaid_balance_minor=13), quote, 3600, policy) == (
        CallAllowed(3600, limited_by_budget=False)
    )
    refused = max_duration_for_budget(Budget(prepaid_balance_minor=12), quote, 3600, policy)
    assert isinstance(refused, BudgetRefused)
    assert refused.needed_minor == 13


# ---------------------------------------------------------------- cost phrases


def phrase(number: str, destination_class: DestinationClass, **kwargs) -> str:
    return describe_cost(rater().quote(number, destination_class, JUL), BillingPolicy(), **kwargs)


def test_cost_phrases_for_the_prompt_and_the_web():
    assert phrase(SYDNEY, C.LOCAL) == "a local call, 12 cents"
    assert phrase(MOBILE, C.MOBILE) == "a mobile, 45 cents a minute"
    assert phrase(MELBOURNE, C.NATIONAL_FIXED) == "a national call, 10 cents a minute"
    assert phrase(LONDON, C.INTERNATIONAL) == (
        "an international call, 5 cents a minute plus 10 cents to connect"
    )
    assert phrase("+447400123456", C.INTERNATIONAL) == (
        "an international call, 60 cents a minute, at least $1.00"
    )
    assert phrase("+61131234", C.SPECIAL) == "a special-rate number, 25 cents"
    assert phrase(SYDNEY, C.LOCAL, mention_tax=True) == "a local call, 12 cents plus GST"


def test_cost_phrases_for_larger_and_sub_cent_prices():
    deck = RateDeck("d", JAN, [entry("1", "1.2"), entry("81", "0.125"), entry("64", "2.005")])
    subject = rater(deck)
    policy = BillingPolicy()

    def say(number: str) -> str:
        return describe_cost(subject.quote(number, C.INTERNATIONAL, JUL), policy)

    assert say("+12125550123") == "an international call, $1.20 a minute"
    assert say("+81312345678") == "an international call, 12.5 cents a minute"
    assert say("+6493031234") == "an international call, $2.005 a minute"
    gbp = BillingPolicy(currency_code="GBP", tax_rate=Decimal("0.2"), tariffs={C.LOCAL: PER_MINUTE})
    in_pounds = rater(deck, policy=gbp).quote("+12125550123", C.LOCAL, JUL)
    assert (
        describe_cost(in_pounds, gbp, mention_tax=True) == "a local call, £1.20 a minute plus tax"
    )


def test_minor_units_are_named_per_currency():
    deck = RateDeck("d", JAN, [entry("1", "0.45"), entry("81", "0.01")])
    for code, expected in [("GBP", "45 pence"), ("USD", "45 cents"), ("CHF", "0.45 CHF")]:
        policy = BillingPolicy(currency_code=code, tariffs={C.INTERNATIONAL: PER_MINUTE})
        quote = rater(deck, policy=policy).quote("+12125550123", C.INTERNATIONAL, JUL)
        assert describe_cost(quote, policy) == f"an international call, {expected} a minute"
    one_cent = rater(deck).quote("+81312345678", C.INTERNATIONAL, JUL)
    assert describe_cost(one_cent, BillingPolicy()) == "an international call, 1 cent a minute"


# ---------------------------------------------------------------- the owner's own leg


def owner_priced(flat: int, per_minute: int) -> BillingPolicy:
    tariffs = {**default_tariffs(), C.INTERNAL: OwnerLegRate(flat, per_minute)}
    return BillingPolicy(tariffs=tariffs)


def owner_leg_charge(policy: BillingPolicy, seconds: int):
    return rater(policy=policy).rate("001002", C.INTERNAL, JUL, seconds)


@pytest.mark.parametrize(
    ("seconds", "billed_s", "net_minor"),
    [
        (0, 0, 5),  # answered and hung up at once: the flat price only
        (1, 60, 7),  # one started minute
        (60, 60, 7),  # exactly a minute
        (61, 120, 9),  # a minute and a second: two started minutes
    ],
)
def test_the_owner_leg_costs_its_flat_price_plus_each_started_minute(seconds, billed_s, net_minor):
    charge = owner_leg_charge(owner_priced(5, 2), seconds)
    assert (charge.destination_class, charge.billed_s, charge.net_minor) == (
        C.INTERNAL,
        billed_s,
        net_minor,
    )
    assert (charge.deck_id, charge.prefix, charge.duration_s) == (None, None, seconds)


def test_the_owner_leg_may_be_priced_flat_only_or_per_minute_only():
    assert [owner_leg_charge(owner_priced(8, 0), s).net_minor for s in (0, 1, 61)] == [8, 8, 8]
    assert [owner_leg_charge(owner_priced(0, 3), s).net_minor for s in (0, 1, 61)] == [0, 3, 6]


def test_the_owner_leg_is_taxed_once_from_its_net_like_any_charge():
    charge = owner_leg_charge(owner_priced(10, 5), 30)  # 15c net, GST 1.5c -> 2c half-up
    assert (charge.net_minor, charge.tax_minor, charge.gross_minor) == (15, 2, 17)


def test_the_owner_leg_is_free_unless_configured():
    assert BillingPolicy().owner_leg.is_free
    assert BillingPolicy(tariffs={C.LOCAL: FlatRate(12)}).owner_leg.is_free
    assert owner_priced(0, 0).owner_leg.is_free
    assert owner_leg_charge(BillingPolicy(), 600).gross_minor == 0
    assert not owner_priced(1, 0).owner_leg.is_free


def test_owner_leg_prices_are_whole_non_negative_minor_units_for_the_internal_class_only():
    with pytest.raises(ValueError, match="non-negative"):
        OwnerLegRate(-1, 0)
    with pytest.raises(ValueError, match="non-negative"):
        OwnerLegRate(0, 1.5)  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(ValueError, match="internal class"):
        BillingPolicy(tariffs={C.INTERNAL: FlatRate(5)})
    with pytest.raises(ValueError, match="internal class"):
        BillingPolicy(tariffs={C.LOCAL: OwnerLegRate(5, 0)})


def test_a_priced_owner_leg_shares_the_budget_for_its_whole_possible_length():
    # A local call is 13c gross. The owner leg, 5c + 2c a started minute, may be up 100 s
    # longer than the bridged call: 120 s is 2 minutes (9c + 1c GST = 10c), 121-180 s is
    # 3 minutes (11c + 1c = 12c), 181 s is 4 minutes (13c + 1c = 14c).
    policy = owner_priced(5, 2)
    quote = rater(policy=policy).quote(SYDNEY, C.LOCAL, JUL)
    assert most_a_call_costs(quote, 20, policy, owner_leg_overhead_s=100) == 13 + 10
    assert most_a_call_costs(quote, 21, policy, owner_leg_overhead_s=100) == 13 + 12
    assert most_a_call_costs(quote, 80, policy, owner_leg_overhead_s=100) == 13 + 12
    assert most_a_call_costs(quote, 81, policy, owner_leg_overhead_s=100) == 13 + 14

    def allowed(budget_minor: int):
        budget = Budget(prepaid_balance_minor=budget_minor)
        return max_duration_for_budget(budget, quote, 3600, policy, owner_leg_overhead_s=100)

    assert allowed(25) == CallAllowed(80, limited_by_budget=True)
    assert allowed(24) == CallAllowed(20, limited_by_budget=True)
    assert allowed(22) == BudgetRefused(BudgetRefusalReason.CANNOT_PAY_CONNECTION, 22, 23)
    assert allowed(10_000) == CallAllowed(3600, limited_by_budget=False)


def test_a_free_owner_leg_leaves_the_budget_to_the_visitor_leg():
    quote = mobile_quote()
    assert most_a_call_costs(quote, 90, BillingPolicy(), owner_leg_overhead_s=500) == 75
    allowed = max_duration_for_budget(
        Budget(prepaid_balance_minor=75), quote, 3600, BillingPolicy(), owner_leg_overhead_s=500
    )
    assert allowed == CallAllowed(90, limited_by_budget=True)


def test_the_owner_leg_has_a_plain_cost_phrase():
    def say(flat: int, per_minute: int) -> str:
        policy = owner_priced(flat, per_minute)
        return describe_cost(rater(policy=policy).quote("001002", C.INTERNAL, JUL), policy)

    assert say(5, 0) == "your extension's leg, 5 cents"
    assert say(0, 2) == "your extension's leg, 2 cents a minute"
    assert say(5, 2) == "your extension's leg, 2 cents a minute plus 5 cents when answered"
    assert say(0, 0) == "your extension's leg, free"


def test_where_the_owner_leg_is_priced_the_owner_hears_both_prices():
    def say(number: str, destination_class: DestinationClass, **kwargs) -> str:
        policy = owner_priced(5, 2)
        quote = rater(policy=policy).quote(number, destination_class, JUL)
        return describe_cost(quote, policy, **kwargs)

    owner_leg = "your extension's leg, 2 cents a minute plus 5 cents when answered"
    both = f"a local call, 12 cents; {owner_leg}"
    assert say(SYDNEY, C.LOCAL) == both
    assert say(MOBILE, C.MOBILE) == f"a mobile, 45 cents a minute; {owner_leg}"
    assert say(SYDNEY, C.LOCAL, mention_tax=True) == f"{both} plus GST"
