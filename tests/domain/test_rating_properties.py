"""Properties every charge must have, whatever the deck says."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import (
    BillingPolicy,
    Budget,
    BudgetRefused,
    CallAllowed,
    DeckSet,
    FlatRate,
    RateDeck,
    RateEntry,
    Rater,
    billed_seconds,
    max_duration_for_budget,
    micros_to_decimal,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
NUMBER = "+61412345678"
MAX_CALL_S = 4 * 3600

money_micros = st.one_of(
    st.integers(0, 5_000_000),  # up to $5, any sub-cent value
    st.sampled_from([0, 120_000, 450_000, 1_000_000]),
)
increments = st.one_of(
    st.sampled_from([(60, 60), (30, 6), (1, 1), (60, 1), (1, 60)]),
    st.tuples(st.integers(1, 600), st.integers(1, 600)),
)
durations = st.integers(0, MAX_CALL_S)


@st.composite
def rate_entries(draw: st.DrawFn) -> RateEntry:
    initial, subsequent = draw(increments)
    return RateEntry(
        prefix="614",
        description="mobile",
        connection_fee_micros=draw(money_micros),
        price_per_minute_micros=draw(money_micros),
        initial_increment_s=initial,
        subsequent_increment_s=subsequent,
        minimum_charge_micros=draw(money_micros),
    )


policies = st.builds(
    lambda exponent, tax: BillingPolicy(minor_unit_exponent=exponent, tax_rate=tax),
    st.sampled_from([0, 2, 3]),
    st.sampled_from([Decimal(0), Decimal("0.10"), Decimal("0.15"), Decimal("0.075")]),
)


def rater_for(entry: RateEntry, policy: BillingPolicy) -> Rater:
    return Rater(DeckSet([RateDeck("deck", EPOCH, [entry])]), policy)


def gross(entry: RateEntry, policy: BillingPolicy, duration_s: int) -> int:
    return (
        rater_for(entry, policy)
        .rate(NUMBER, DestinationClass.MOBILE, EPOCH, duration_s)
        .gross_minor
    )


@given(rate_entries(), policies, durations)
def test_charges_are_never_negative_and_add_up(entry, policy, duration):
    charge = rater_for(entry, policy).rate(NUMBER, DestinationClass.MOBILE, EPOCH, duration)
    assert charge.net_minor >= 0 and charge.tax_minor >= 0
    assert charge.gross_minor == charge.net_minor + charge.tax_minor
    assert charge.billed_s >= duration


@given(rate_entries(), policies, durations, durations)
def test_charges_are_monotonic_in_duration(entry, policy, first, second):
    shorter, longer = sorted((first, second))
    subject = rater_for(entry, policy)
    short_charge = subject.rate(NUMBER, DestinationClass.MOBILE, EPOCH, shorter)
    long_charge = subject.rate(NUMBER, DestinationClass.MOBILE, EPOCH, longer)
    assert short_charge.net_minor <= long_charge.net_minor
    assert short_charge.gross_minor <= long_charge.gross_minor


@given(rate_entries(), policies, durations)
def test_the_same_call_always_rates_the_same(entry, policy, duration):
    once = rater_for(entry, policy).rate(NUMBER, DestinationClass.MOBILE, EPOCH, duration)
    again = rater_for(entry, policy).rate(NUMBER, DestinationClass.MOBILE, EPOCH, duration)
    assert once == again


@given(rate_entries(), policies, durations)
def test_integer_rating_matches_a_decimal_reference(entry, policy, duration):
    """The documented formula, written the slow obvious way with Decimal."""
    billed = billed_seconds(duration, entry.initial_increment_s, entry.subsequent_increment_s)
    exact = micros_to_decimal(entry.connection_fee_micros) + micros_to_decimal(
        entry.price_per_minute_micros
    ) * Decimal(billed) / Decimal(60)
    exact = max(exact, micros_to_decimal(entry.minimum_charge_micros))
    minor = Decimal(1).scaleb(-policy.minor_unit_exponent)
    net = int(exact.quantize(minor, rounding=ROUND_HALF_UP).scaleb(policy.minor_unit_exponent))
    tax = int((net * policy.tax_rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    charge = rater_for(entry, policy).rate(NUMBER, DestinationClass.MOBILE, EPOCH, duration)
    assert (charge.net_minor, charge.tax_minor) == (net, tax)


@given(
    rate_entries(),
    policies,
    durations,
    st.integers(-3, 3),
    st.one_of(st.integers(1, 300), st.integers(1, MAX_CALL_S)),
)
def test_max_duration_from_budget_never_overspends_and_is_the_longest(
    entry, policy, target_s, slack, max_call_s
):
    # Budgets near the price of some call length, so the search meets its boundaries.
    available = gross(entry, policy, target_s) + slack
    quote = rater_for(entry, policy).quote(NUMBER, DestinationClass.MOBILE, EPOCH)
    result = max_duration_for_budget(
        Budget(prepaid_balance_minor=available), quote, max_call_s, policy
    )
    if isinstance(result, BudgetRefused):
        assert gross(entry, policy, 1) > available
        assert result.needed_minor > available
        return
    assert isinstance(result, CallAllowed)
    assert 1 <= result.max_duration_s <= max_call_s
    assert gross(entry, policy, result.max_duration_s) <= available
    if result.limited_by_budget:
        assert gross(entry, policy, result.max_duration_s + 1) > available
    else:
        assert result.max_duration_s == max_call_s


@given(
    st.dictionaries(
        st.text("0123456789", min_size=1, max_size=6).filter(lambda p: p[0] != "0"),
        st.integers(0, 1_000_000),
        max_size=40,
    ),
    st.text("0123456789", min_size=1, max_size=15),
)
def test_lookup_finds_the_longest_matching_prefix(prices, digits):
    entries = [RateEntry(prefix, "", 0, price, 60, 60, 0) for prefix, price in prices.items()]
    deck = RateDeck("deck", EPOCH, entries)
    matching = [prefix for prefix in prices if digits.startswith(prefix)]
    found = deck.find(digits)
    if matching:
        assert found is not None and found.prefix == max(matching, key=len)
    else:
        assert found is None


@given(st.integers(0, 10_000), durations, durations)
def test_a_flat_tariff_charges_the_same_for_any_answered_length(amount, first, second):
    policy = BillingPolicy(tariffs={DestinationClass.LOCAL: FlatRate(amount)})
    subject = Rater(DeckSet(), policy)
    at_first = subject.rate("+61290375678", DestinationClass.LOCAL, EPOCH, first)
    at_second = subject.rate("+61290375678", DestinationClass.LOCAL, EPOCH, second)
    assert at_first.net_minor == at_second.net_minor == amount
