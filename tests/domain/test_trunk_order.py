from datetime import UTC, datetime

from callnow.domain.rating import RateDeck, RateEntry
from callnow.domain.trunk_order import least_cost_order, reference_cost

JAN = datetime(2026, 1, 1, tzinfo=UTC)
SYDNEY = "+61290375678"
MOBILE = "+61412345678"


def deck(name: str, *entries: RateEntry) -> RateDeck:
    return RateDeck(name, JAN, entries)


def rate(prefix: str, per_minute: str, **more: object) -> RateEntry:
    return RateEntry.from_prices(prefix, prefix, price_per_minute=per_minute, **more)  # type: ignore[arg-type]


def order(trunks: list[str], decks: dict[str, RateDeck], number: str = SYDNEY) -> list[str]:
    return least_cost_order(trunks, number, decks.get)


def test_the_cheapest_priced_trunk_comes_first() -> None:
    decks = {"a": deck("a", rate("61", "0.03")), "b": deck("b", rate("61", "0.01"))}
    assert order(["a", "b"], decks) == ["b", "a"]


def test_the_longest_prefix_of_each_deck_prices_the_number() -> None:
    decks = {
        "a": deck("a", rate("61", "0.01"), rate("614", "0.20")),
        "b": deck("b", rate("61", "0.05")),
    }
    assert order(["a", "b"], decks) == ["a", "b"]
    assert order(["a", "b"], decks, MOBILE) == ["b", "a"]


def test_unpriced_trunks_follow_the_priced_in_configured_order() -> None:
    decks = {"c": deck("c", rate("61", "0.02")), "d": deck("d", rate("44", "0.001"))}
    # a: no deck; d: a deck without this number; c: priced
    assert order(["a", "d", "c", "b"], decks) == ["c", "a", "d", "b"]


def test_equal_prices_and_no_decks_keep_the_configured_order() -> None:
    same = {"x": deck("x", rate("61", "0.02")), "y": deck("y", rate("61", "0.02"))}
    assert order(["y", "x"], same) == ["y", "x"]
    assert order(["b", "a", "c"], {}) == ["b", "a", "c"]


def test_connection_fee_minimum_and_increments_count() -> None:
    # 0.01/min but 0.10 to connect loses to 0.03/min on a three-minute call (0.13 vs 0.09) ...
    fee = rate("61", "0.01", connection_fee="0.10")
    flat = rate("61", "0.03")
    assert order(["fee", "flat"], {"fee": deck("f", fee), "flat": deck("g", flat)}) == [
        "flat",
        "fee",
    ]
    # ... a minimum charge above the call's price counts in full ...
    minimum = rate("61", "0.001", minimum_charge="0.50")
    assert reference_cost(minimum) == reference_cost(rate("61", "0", connection_fee="0.50"))
    # ... and a per-second increment beats a per-minute one on 181 s.
    per_second = rate("61", "0.03", increments=(1, 1))
    per_minute = rate("61", "0.03", increments=(60, 60))
    assert reference_cost(per_second, 181) < reference_cost(per_minute, 181)
