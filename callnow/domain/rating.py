"""Exact rating of answered calls, and the longest call a budget can pay for.

Money
    Charges are integers in the currency's minor unit (cents). Deck prices are integers in
    micro-units of the major unit (0.45 AUD a minute = 450_000 micros), so every sub-cent price a
    carrier quotes (up to six decimals) is held exactly and the arithmetic is integer-only. There
    is no float anywhere on the money path.

Rounding
    A call's net charge is rounded once, half-up, to the minor unit, after the minimum charge has
    been applied to the exact amount. Tax is then computed from that net and rounded once,
    half-up; gross = net + tax. Deck and flat prices are tax-exclusive.

Increments (A2Billing semantics)
    For an answered call of d whole seconds with initial increment i and subsequent increment s:
      d == 0         -> billed 0 s (answered, then hung up within the first second)
      0 < d <= i     -> billed i s
      d > i          -> billed i + ceil((d - i) / s) * s
    exact = connection_fee + price_per_minute * billed / 60
    net   = round_half_up(max(minimum_charge, exact))
    Connection fee and minimum charge are owed by every answered call, including one of 0 s: the
    carrier bills the answer, not the seconds. Unanswered calls are never rated.

The owner's leg
    CallNow rings the owner's extension first. That internal leg is free unless the provider
    prices it (`OwnerLegRate`, class "internal"): a flat net price per answered leg plus a net
    price per started minute of its answered time, taxed like any charge. Its budget share is
    counted with the call's: the owner's leg is up for the bridged time plus at most a bounded
    overhead (prompts, ringing the visitor), so `max_duration_for_budget` covers both legs.

Decks
    A deck is a complete price list with an effective-from instant. A call is rated with the deck
    in force when it was answered: the tenant's own deck if the tenant has one in force then,
    otherwise the platform deck. Decks are not merged prefix by prefix, so every charge names the
    one deck that priced it and a tenant deck that lacks a prefix refuses the call.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType

from callnow.domain.destinations import DestinationClass

MICROS_PER_UNIT = 1_000_000
MICRO_DIGITS = 6
MAX_PREFIX_DIGITS = 15  # the longest E.164 number


# ---------------------------------------------------------------------------- money helpers


def money_to_micros(amount: Decimal | str) -> int:
    """Exact micro-units of a major-unit amount; more than six decimals is refused, not rounded."""
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    micros = value.scaleb(MICRO_DIGITS)
    if micros != micros.to_integral_value():
        raise ValueError(f"more than {MICRO_DIGITS} decimal places: {amount!r}")
    return int(micros)


def micros_to_decimal(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-MICRO_DIGITS)


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for numerator >= 0 and denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def billed_seconds(duration_s: int, initial_s: int, subsequent_s: int) -> int:
    """Seconds charged for an answered call of `duration_s` seconds (see the module docstring)."""
    if duration_s < 0:
        raise ValueError(f"negative duration: {duration_s}")
    if duration_s == 0:
        return 0
    if duration_s <= initial_s:
        return initial_s
    return initial_s - (initial_s - duration_s) // subsequent_s * subsequent_s


# ---------------------------------------------------------------------------- rate decks


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One deck line: the price of numbers whose E.164 digits start with `prefix`."""

    prefix: str
    description: str
    connection_fee_micros: int
    price_per_minute_micros: int
    initial_increment_s: int
    subsequent_increment_s: int
    minimum_charge_micros: int

    def __post_init__(self) -> None:
        if not (
            self.prefix.isascii()
            and self.prefix.isdigit()
            and len(self.prefix) <= MAX_PREFIX_DIGITS
            and self.prefix[0] != "0"
        ):
            raise ValueError(f"prefix must be 1-{MAX_PREFIX_DIGITS} digits, not 0-led")
        for name in ("connection_fee_micros", "price_per_minute_micros", "minimum_charge_micros"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        for name in ("initial_increment_s", "subsequent_increment_s"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")

    @classmethod
    def from_prices(
        cls,
        prefix: str,
        description: str,
        *,
        connection_fee: Decimal | str = "0",
        price_per_minute: Decimal | str,
        increments: tuple[int, int] = (60, 60),
        minimum_charge: Decimal | str = "0",
    ) -> RateEntry:
        """Build an entry from major-unit prices, as a person writes them ("0.45")."""
        return cls(
            prefix=prefix,
            description=description,
            connection_fee_micros=money_to_micros(connection_fee),
            price_per_minute_micros=money_to_micros(price_per_minute),
            initial_increment_s=increments[0],
            subsequent_increment_s=increments[1],
            minimum_charge_micros=money_to_micros(minimum_charge),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


class RateDeck:
    """An immutable price list with longest-prefix lookup.

    Lookup probes a dict from the longest prefix length the deck holds down to the shortest,
    skipping lengths no entry has: at most one dict probe per distinct length.
    """

    __slots__ = ("_by_prefix", "_lengths", "deck_id", "effective_from")

    def __init__(self, deck_id: str, effective_from: datetime, entries: Iterable[RateEntry]):
        _require_aware(effective_from, "effective_from")
        by_prefix: dict[str, RateEntry] = {}
        for entry in entries:
            if entry.prefix in by_prefix:
                raise ValueError(f"duplicate prefix {entry.prefix} in deck {deck_id}")
            by_prefix[entry.prefix] = entry
        self.deck_id = deck_id
        self.effective_from = effective_from
        self._by_prefix = by_prefix
        self._lengths = tuple(sorted({len(prefix) for prefix in by_prefix}, reverse=True))

    def find(self, digits: str) -> RateEntry | None:
        """The entry with the longest prefix of `digits` (E.164 without '+'), if any."""
        by_prefix = self._by_prefix
        size = len(digits)
        for length in self._lengths:
            if length <= size:
                entry = by_prefix.get(digits[:length])
                if entry is not None:
                    return entry
        return None

    def __len__(self) -> int:
        return len(self._by_prefix)

    def __iter__(self) -> Iterator[RateEntry]:
        """Entries in prefix order, so exports are stable."""
        return iter(sorted(self._by_prefix.values(), key=lambda entry: entry.prefix))

    def __repr__(self) -> str:
        return f"RateDeck({self.deck_id!r}, {self.effective_from.isoformat()}, {len(self)} entries)"


class _Timeline:
    """Decks of one owner (the platform or a tenant) ordered by effective_from."""

    __slots__ = ("_decks", "_starts")

    def __init__(self, decks: Iterable[RateDeck]):
        ordered = sorted(decks, key=lambda deck: deck.effective_from)
        for earlier, later in pairwise(ordered):
            if earlier.effective_from == later.effective_from:
                raise ValueError(
                    f"decks {earlier.deck_id} and {later.deck_id} take effect at the same instant"
                )
        self._decks = tuple(ordered)
        self._starts = tuple(deck.effective_from for deck in ordered)

    def in_force(self, at: datetime) -> RateDeck | None:
        index = bisect_right(self._starts, at)
        return self._decks[index - 1] if index else None


class DeckSet:
    """Which deck prices a call answered at a given instant, for a given tenant."""

    __slots__ = ("_platform", "_tenants")

    def __init__(
        self,
        platform_decks: Iterable[RateDeck] = (),
        tenant_decks: Mapping[str, Iterable[RateDeck]] | None = None,
    ):
        self._platform = _Timeline(platform_decks)
        self._tenants = {
            tenant_id: _Timeline(decks) for tenant_id, decks in (tenant_decks or {}).items()
        }

    def in_force(self, at: datetime, tenant_id: str | None = None) -> RateDeck | None:
        _require_aware(at, "answered_at")
        if tenant_id is not None:
            timeline = self._tenants.get(tenant_id)
            if timeline is not None:
                deck = timeline.in_force(at)
                if deck is not None:
                    return deck
        return self._platform.in_force(at)


# ---------------------------------------------------------------------------- tariffs and policy


@dataclass(frozen=True, slots=True)
class FlatRate:
    """A fixed net price per answered call, whatever its length."""

    amount_minor: int

    def __post_init__(self) -> None:
        if not _is_int(self.amount_minor) or self.amount_minor < 0:
            raise ValueError("a flat rate is a non-negative integer of minor units")


@dataclass(frozen=True, slots=True)
class PerMinute:
    """Priced by the entry of the deck in force that matches the number."""


PER_MINUTE = PerMinute()


@dataclass(frozen=True, slots=True)
class OwnerLegRate:
    """The owner's own leg: `flat_minor` per answered leg plus `per_minute_minor` per started
    minute of its answered time, both net minor units. Both 0 (the default) is free: no charge
    is posted for the leg at all."""

    flat_minor: int = 0
    per_minute_minor: int = 0

    def __post_init__(self) -> None:
        for name in ("flat_minor", "per_minute_minor"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer of minor units")

    @property
    def is_free(self) -> bool:
        return self.flat_minor == 0 and self.per_minute_minor == 0

    def billed_seconds(self, duration_s: int) -> int:
        """Whole started minutes, in seconds: 0 s -> 0, 1..60 s -> 60, 61 s -> 120."""
        if duration_s < 0:
            raise ValueError(f"negative duration: {duration_s}")
        return -(-duration_s // 60) * 60

    def net_minor(self, duration_s: int) -> int:
        return self.flat_minor + self.per_minute_minor * (self.billed_seconds(duration_s) // 60)


FREE_OWNER_LEG = OwnerLegRate()
Tariff = FlatRate | PerMinute | OwnerLegRate


def default_tariffs() -> Mapping[DestinationClass, Tariff]:
    """12c flat for a local call; every other dialable class from the deck; the owner's leg
    free."""
    return {
        DestinationClass.LOCAL: FlatRate(12),
        DestinationClass.NATIONAL_FIXED: PER_MINUTE,
        DestinationClass.MOBILE: PER_MINUTE,
        DestinationClass.INTERNATIONAL: PER_MINUTE,
        DestinationClass.SPECIAL: PER_MINUTE,
        DestinationClass.INTERNAL: FREE_OWNER_LEG,
    }


@dataclass(frozen=True)
class BillingPolicy:
    """Currency, tax and the tariff of each destination class."""

    currency_code: str = "AUD"
    minor_unit_exponent: int = 2
    tax_rate: Decimal = Decimal("0.10")  # GST
    tariffs: Mapping[DestinationClass, Tariff] = field(default_factory=default_tariffs)

    def __post_init__(self) -> None:
        if not 0 <= self.minor_unit_exponent <= MICRO_DIGITS:
            raise ValueError(f"minor_unit_exponent must be 0..{MICRO_DIGITS}")
        if not isinstance(self.tax_rate, Decimal) or not 0 <= self.tax_rate <= 1:
            raise ValueError("tax_rate must be a Decimal between 0 and 1")
        if DestinationClass.PREMIUM in self.tariffs:
            raise ValueError("premium destinations are never rated")
        for destination_class, tariff in self.tariffs.items():
            if (destination_class is DestinationClass.INTERNAL) != isinstance(tariff, OwnerLegRate):
                raise ValueError("the internal class, and only it, is priced by an OwnerLegRate")
        object.__setattr__(self, "tariffs", MappingProxyType(dict(self.tariffs)))

    @property
    def owner_leg(self) -> OwnerLegRate:
        """The owner's leg's tariff; free when none is configured."""
        tariff = self.tariffs.get(DestinationClass.INTERNAL, FREE_OWNER_LEG)
        assert isinstance(tariff, OwnerLegRate)  # __post_init__ guarantees it
        return tariff

    def tax_minor(self, net_minor: int) -> int:
        numerator, denominator = self.tax_rate.as_integer_ratio()
        return round_half_up(net_minor * numerator, denominator)

    @property
    def micros_per_minor(self) -> int:
        # int ** int is typed Any (a negative exponent gives a float); this one is never negative.
        factor: int = 10 ** (MICRO_DIGITS - self.minor_unit_exponent)
        return factor


# ---------------------------------------------------------------------------- refusals


class RatingRefused(Exception):
    """The call cannot be priced, so must not be (or should not have been) dialled."""


class PremiumRefused(RatingRefused):
    pass


class NoTariffForClass(RatingRefused):
    pass


class NoDeckInForce(RatingRefused):
    pass


class NoRateForNumber(RatingRefused):
    pass


# ---------------------------------------------------------------------------- charges


@dataclass(frozen=True, slots=True)
class Quote:
    """The price that applies to one number at one instant: what the owner is told and billed."""

    destination_class: DestinationClass
    tariff: FlatRate | RateEntry | OwnerLegRate
    deck_id: str | None  # None for a flat rate and the owner's leg


@dataclass(frozen=True, slots=True)
class Charge:
    destination_class: DestinationClass
    net_minor: int
    tax_minor: int
    gross_minor: int
    currency_code: str
    duration_s: int
    # Seconds after increments: the duration for a flat rate, started minutes for the owner's leg.
    billed_s: int
    deck_id: str | None
    prefix: str | None


def net_minor(
    tariff: FlatRate | RateEntry | OwnerLegRate, duration_s: int, micros_per_minor: int
) -> int:
    """Net charge, rounded once half-up, for an answered call of `duration_s` seconds."""
    if isinstance(tariff, FlatRate):
        if duration_s < 0:
            raise ValueError(f"negative duration: {duration_s}")
        return tariff.amount_minor
    if isinstance(tariff, OwnerLegRate):
        return tariff.net_minor(duration_s)
    seconds = billed_seconds(duration_s, tariff.initial_increment_s, tariff.subsequent_increment_s)
    return _per_minute_net(tariff, seconds, 60 * micros_per_minor)


def _per_minute_net(entry: RateEntry, seconds: int, micros_per_minor_minute: int) -> int:
    # Work in micros x 60 so the per-second price never needs dividing before the final rounding.
    exact = entry.connection_fee_micros * 60 + entry.price_per_minute_micros * seconds
    minimum = entry.minimum_charge_micros * 60
    if exact < minimum:
        exact = minimum
    return (2 * exact + micros_per_minor_minute) // (2 * micros_per_minor_minute)


class Rater:
    """Prices calls against a deck set under one billing policy."""

    __slots__ = ("_currency", "_decks", "_micros_per_minor_minute", "_tariffs", "_tax", "policy")

    def __init__(self, decks: DeckSet, policy: BillingPolicy | None = None):
        self.policy = policy or BillingPolicy()
        self._decks = decks
        self._tariffs = self.policy.tariffs
        self._currency = self.policy.currency_code
        self._micros_per_minor_minute = 60 * self.policy.micros_per_minor
        self._tax = self.policy.tax_rate.as_integer_ratio()

    def quote(
        self,
        number: str,
        destination_class: DestinationClass,
        at: datetime,
        tenant_id: str | None = None,
    ) -> Quote:
        """The tariff for `number` (E.164) at `at`; raises RatingRefused when there is none.

        For the owner's leg (INTERNAL) `number` is the extension and the policy's owner-leg
        tariff applies, free when none is configured.
        """
        if destination_class is DestinationClass.INTERNAL:
            return Quote(destination_class, self.policy.owner_leg, None)
        if destination_class is DestinationClass.PREMIUM:
            raise PremiumRefused(f"{number} is a premium destination")
        tariff = self._tariffs.get(destination_class)
        if tariff is None:
            raise NoTariffForClass(f"no tariff for {destination_class.value} destinations")
        if isinstance(tariff, FlatRate):
            return Quote(destination_class, tariff, None)
        deck = self._decks.in_force(at, tenant_id)
        if deck is None:
            raise NoDeckInForce(f"no rate deck in force at {at.isoformat()}")
        if number[:1] != "+":
            raise ValueError(f"not an E.164 number: {number!r}")
        entry = deck.find(number[1:])
        if entry is None:
            raise NoRateForNumber(f"deck {deck.deck_id} has no rate for {number}")
        return Quote(destination_class, entry, deck.deck_id)

    def rate(
        self,
        number: str,
        destination_class: DestinationClass,
        answered_at: datetime,
        duration_s: int,
        tenant_id: str | None = None,
    ) -> Charge:
        """The charge for an answered call; raises RatingRefused, premium included."""
        return self.charge(
            self.quote(number, destination_class, answered_at, tenant_id), duration_s
        )

    def charge(self, quote: Quote, duration_s: int) -> Charge:
        tariff = quote.tariff
        if isinstance(tariff, FlatRate):
            if duration_s < 0:
                raise ValueError(f"negative duration: {duration_s}")
            net, seconds, prefix = tariff.amount_minor, duration_s, None
        elif isinstance(tariff, OwnerLegRate):
            seconds = tariff.billed_seconds(duration_s)
            net, prefix = tariff.net_minor(duration_s), None
        else:
            seconds = billed_seconds(
                duration_s, tariff.initial_increment_s, tariff.subsequent_increment_s
            )
            net = _per_minute_net(tariff, seconds, self._micros_per_minor_minute)
            prefix = tariff.prefix
        numerator, denominator = self._tax
        tax = (2 * net * numerator + denominator) // (2 * denominator)
        return Charge(
            quote.destination_class,
            net,
            tax,
            net + tax,
            self._currency,
            duration_s,
            seconds,
            quote.deck_id,
            prefix,
        )


# ---------------------------------------------------------------------------- budgets


@dataclass(frozen=True, slots=True)
class Budget:
    """What the owner may still spend, in gross minor units; None means that limit is off."""

    daily_cap_remaining_minor: int | None = None
    prepaid_balance_minor: int | None = None
    credit_remaining_minor: int | None = None

    @property
    def available_minor(self) -> int | None:
        limits = [
            limit
            for limit in (
                self.daily_cap_remaining_minor,
                self.prepaid_balance_minor,
                self.credit_remaining_minor,
            )
            if limit is not None
        ]
        return min(limits) if limits else None


class BudgetRefusalReason(StrEnum):
    CANNOT_PAY_CONNECTION = "cannot_pay_connection"  # connection fee or minimum charge
    CANNOT_PAY_FIRST_INCREMENT = "cannot_pay_first_increment"


@dataclass(frozen=True, slots=True)
class BudgetRefused:
    reason: BudgetRefusalReason
    available_minor: int
    needed_minor: int  # gross cost of the shortest call the refusal is about


@dataclass(frozen=True, slots=True)
class CallAllowed:
    """The call may last `max_duration_s` seconds after answer; its gross charge then fits."""

    max_duration_s: int
    limited_by_budget: bool


def gross_minor(quote: Quote, duration_s: int, policy: BillingPolicy) -> int:
    """What one answered leg of `duration_s` seconds costs, tax included."""
    net = net_minor(quote.tariff, duration_s, policy.micros_per_minor)
    return net + policy.tax_minor(net)


def most_a_call_costs(
    quote: Quote, bridged_s: int, policy: BillingPolicy, *, owner_leg_overhead_s: int = 0
) -> int:
    """Gross cost of a callback whose visitor leg lasts `bridged_s` seconds, plus the owner's
    leg when it is priced: that leg is up for the bridged time and at most
    `owner_leg_overhead_s` more (the prompt, ringing the visitor). Each leg is its own charge,
    taxed and rounded on its own, exactly as they will be posted."""
    total = gross_minor(quote, bridged_s, policy)
    owner = policy.owner_leg
    if not owner.is_free:
        owner_quote = Quote(DestinationClass.INTERNAL, owner, None)
        total += gross_minor(owner_quote, owner_leg_overhead_s + bridged_s, policy)
    return total


def max_duration_for_budget(
    budget: Budget,
    quote: Quote,
    max_call_duration_s: int,
    policy: BillingPolicy,
    *,
    owner_leg_overhead_s: int = 0,
) -> CallAllowed | BudgetRefused:
    """The longest call (whole seconds, at most `max_call_duration_s`) whose gross charge fits,
    the owner's leg included when it is priced (see `most_a_call_costs`).

    The engine must hang up no later than `max_duration_s` after answer and report at most that
    many seconds; any longer report would bill one more increment than the budget allows.
    """
    if max_call_duration_s < 1:
        raise ValueError("max_call_duration_s must be at least 1")
    if owner_leg_overhead_s < 0:
        raise ValueError("owner_leg_overhead_s must not be negative")
    available = budget.available_minor
    if available is None:
        return CallAllowed(max_call_duration_s, limited_by_budget=False)

    def gross(duration_s: int) -> int:
        return most_a_call_costs(
            quote, duration_s, policy, owner_leg_overhead_s=owner_leg_overhead_s
        )

    if gross(0) > available:
        return BudgetRefused(BudgetRefusalReason.CANNOT_PAY_CONNECTION, available, gross(0))
    if gross(1) > available:
        return BudgetRefused(BudgetRefusalReason.CANNOT_PAY_FIRST_INCREMENT, available, gross(1))
    if not policy.owner_leg.is_free:
        return _longest_affordable(gross, available, max_call_duration_s)
    # The visitor's quote: only the owner's own leg is priced by an OwnerLegRate.
    tariff: FlatRate | RateEntry = quote.tariff  # type: ignore[assignment]  # see above
    if isinstance(tariff, FlatRate) or max_call_duration_s <= tariff.initial_increment_s:
        return CallAllowed(max_call_duration_s, limited_by_budget=False)

    # Charges only change at increment boundaries i + k*s: find the largest affordable k.
    initial, step = tariff.initial_increment_s, tariff.subsequent_increment_s
    last_k = -(-(max_call_duration_s - initial) // step)
    low, high = 0, last_k  # gross(initial + low*step) fits; search (low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if gross(initial + middle * step) <= available:
            low = middle
        else:
            high = middle - 1
    if low == last_k:
        return CallAllowed(max_call_duration_s, limited_by_budget=False)
    return CallAllowed(initial + low * step, limited_by_budget=True)


def _longest_affordable(
    gross: Callable[[int], int], available: int, max_call_duration_s: int
) -> CallAllowed:
    """Two legs' charges step at different boundaries, so search whole seconds: the total never
    falls as the call grows, and a second costs what the increment it starts costs."""
    if gross(max_call_duration_s) <= available:
        return CallAllowed(max_call_duration_s, limited_by_budget=False)
    low, high = 1, max_call_duration_s  # gross(low) fits, gross(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if gross(middle) <= available:
            low = middle
        else:
            high = middle
    return CallAllowed(low, limited_by_budget=True)
