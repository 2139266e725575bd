"""Owner notices by e-mail: the kinds an owner may choose, and when a burst becomes a digest.

Pure rules; the outbox (`callnow.store.mail`) and the sender (`callnow.notify`) apply them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from callnow.i18n import N_


class Kind(StrEnum):
    AWAITING = "awaiting"  # a request waits for the owner's Accept or Decline on the web
    MISSED = "missed"  # the owner did not answer (phone or web)
    DECLINED = "declined"  # a request ended declined or rejected
    MESSAGE = "message"  # a visitor left a message
    BOOKING = "booking"  # a visitor booked a call for later
    BUDGET = "budget"  # the owner's budget is nearly used up
    FLOOD = "flood"  # the page saw a flood of requests and now asks visitors for a CAPTCHA
    PASSWORD_RESET = "password_reset"  # not a choice: always sent, never in a digest


CHOOSABLE: tuple[Kind, ...] = (
    Kind.AWAITING,
    Kind.MISSED,
    Kind.DECLINED,
    Kind.MESSAGE,
    Kind.BOOKING,
    Kind.BUDGET,
    Kind.FLOOD,
)

LABELS: dict[Kind, str] = {
    Kind.AWAITING: N_("A request waits for my Accept or Decline"),
    Kind.MISSED: N_("I missed a request (no answer)"),
    Kind.DECLINED: N_("A request was declined or rejected"),
    Kind.MESSAGE: N_("A visitor left a message"),
    Kind.BOOKING: N_("A visitor booked a call"),
    Kind.BUDGET: N_("My budget is nearly used up"),
    Kind.FLOOD: N_("My page gets a flood of requests and asks visitors for a CAPTCHA"),
}


def parse_kinds(stored: str) -> frozenset[Kind]:
    """The kinds an owner chose, from their stored comma list; unknown words are ignored."""
    known = {k.value: k for k in CHOOSABLE}
    return frozenset(known[word] for word in stored.split(",") if word in known)


def format_kinds(kinds: frozenset[Kind] | set[Kind]) -> str:
    return ",".join(k.value for k in CHOOSABLE if k in kinds)


def wanted(kind: Kind, *, paused: bool, chosen: frozenset[Kind]) -> bool:
    """Whether a notice of `kind` is written at all for an owner."""
    if kind is Kind.PASSWORD_RESET:
        return True
    return not paused and kind in chosen


@dataclass(frozen=True)
class DigestRule:
    """At most `burst` separate mails to one owner within `window`; beyond that, what is due goes
    out together as one digest, and at most one digest per `gap`."""

    burst: int = 5
    window: timedelta = timedelta(minutes=10)
    gap: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.burst < 1 or self.window <= timedelta(0) or self.gap < timedelta(0):
            raise ValueError("a digest rule needs burst >= 1, a positive window and gap >= 0")


class Plan(StrEnum):
    EACH = "each"  # send every due notice as its own mail
    DIGEST = "digest"  # send them all as one mail now
    HOLD = "hold"  # wait: a digest went out too recently


def plan(
    rule: DigestRule,
    *,
    sent_in_window: int,
    due: int,
    last_sent_at: datetime | None,
    now: datetime,
) -> Plan:
    """What to do with `due` notices of one owner who got `sent_in_window` mails lately."""
    if due <= 0:
        return Plan.HOLD
    if sent_in_window + due <= rule.burst:
        return Plan.EACH
    if last_sent_at is not None and now - last_sent_at < rule.gap:
        return Plan.HOLD
    return Plan.DIGEST
