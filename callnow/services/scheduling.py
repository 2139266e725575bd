"""Scheduled callbacks, for the visitor's pages: which slots a page offers, and whether a posted
slot may be booked, with a sentence that says why not.

The slot rules are in `domain/scheduling.py`; booking itself goes through the page's one
safeguard pipeline (`public_page.ask_for_callback`), so a booking meets the same limits, CAPTCHA
and intake as a request for now. The engine asks the owner's page and rules again at the slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from callnow.domain.scheduling import (
    MAX_DAYS_AHEAD,
    MAX_LISTED,
    MAX_PER_SLOT,
    MIN_DAYS_AHEAD,
    MIN_PER_SLOT,
    SLOT,
    SchedulingPolicy,
    SlotProblem,
    candidate_slots,
    problem_with,
)
from callnow.i18n import formats, ngettext
from callnow.i18n import gettext as _
from callnow.store import audit, profiles
from callnow.store import scheduling as booked
from callnow.store.models import CallRequest, Profile, User


def policy_of(profile: Profile) -> SchedulingPolicy:
    return SchedulingPolicy.bounded(
        bool(profile.scheduling_enabled),
        profile.scheduling_days_ahead or 0,
        profile.scheduling_per_slot or 0,
    )


def slot_value(moment: datetime) -> str:
    """A slot as the form posts it: UTC, to the minute."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def parse_slot(text: str) -> datetime | None:
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%MZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SlotChoice:
    value: str  # what the form posts
    label: str  # the owner's wall clock, "09:15"
    utc: str  # ISO 8601, for the script that adds the visitor's own time


@dataclass(frozen=True)
class SlotDay:
    label: str  # the owner's date, "Mon 07 Dec 2026"
    slots: list[SlotChoice]


def open_slots(session: Session, profile: Profile, now: datetime) -> list[SlotDay]:
    """The slots a visitor may book now (full ones left out), grouped by the owner's day."""
    policy = policy_of(profile)
    if not policy.enabled:
        return []
    tz = profiles.timezone_of(profile)
    candidates = candidate_slots(profiles.windows_of(profile), tz, now, policy.days_ahead)
    if not candidates:
        return []
    counts = booked.booked_counts(session, profile.id, candidates[0], candidates[-1])
    days: list[SlotDay] = []
    listed = 0
    for start in candidates:
        if counts[start] >= policy.per_slot:
            continue
        if listed == MAX_LISTED:
            break
        day = formats.date(start, tz)
        choice = SlotChoice(slot_value(start), formats.time(start, tz), start.isoformat())
        if days and days[-1].label == day:
            days[-1].slots.append(choice)
        else:
            days.append(SlotDay(day, [choice]))
        listed += 1
    return days


def problem_text(problem: SlotProblem, policy: SchedulingPolicy, owner_name: str | None) -> str:
    if problem is SlotProblem.NOT_OFFERED:
        return _("Booking a time is not offered on this page.")
    if problem is SlotProblem.PAST:
        return _("That time has already passed. Please choose a later time.")
    if problem is SlotProblem.TOO_FAR:
        return ngettext(
            "You can book at most %(days)s day ahead. Please choose an earlier time.",
            "You can book at most %(days)s days ahead. Please choose an earlier time.",
            policy.days_ahead,
        ) % {"days": policy.days_ahead}
    if problem is SlotProblem.OUTSIDE_HOURS:
        if owner_name:
            return _(
                "%(name)s does not take calls at that time. Please choose a time from the list."
            ) % {"name": owner_name}
        return _(
            "The person you asked does not take calls at that time. "
            "Please choose a time from the list."
        )
    if problem is SlotProblem.FULL:
        return _("That time is fully booked. Please choose another time.")
    return _("Please choose a time from the list.")


def slot_problem(
    session: Session, profile: Profile, slot: datetime, now: datetime
) -> SlotProblem | None:
    """Why `slot` (aware) cannot be booked on this page now, or None. Counts the slot's
    bookings under a lock of the page's row, so two bookings cannot both take its last place;
    the booking page and the Call API ask this alike."""
    policy = policy_of(profile)
    if not policy.enabled:
        return SlotProblem.NOT_OFFERED
    slot = slot.astimezone(UTC)
    booked.lock_page(session, profile.id)
    count = booked.booked_counts(session, profile.id, slot, slot)[slot]
    tz = profiles.timezone_of(profile)
    return problem_with(slot, profiles.windows_of(profile), tz, now, policy, count)


def check_slot(
    session: Session, profile: Profile, slot_text: str, now: datetime, owner_name: str | None
) -> tuple[datetime | None, str | None]:
    """The posted slot, or why it cannot be booked (a sentence for the visitor)."""
    policy = policy_of(profile)
    if not policy.enabled:
        return None, problem_text(SlotProblem.NOT_OFFERED, policy, owner_name)
    slot = parse_slot(slot_text)
    if slot is None:
        return None, problem_text(SlotProblem.NOT_A_SLOT, policy, owner_name)
    problem = slot_problem(session, profile, slot, now)
    if problem is not None:
        return None, problem_text(problem, policy, owner_name)
    return slot, None


def slot_end(slot: datetime) -> datetime:
    return slot + SLOT


def upcoming_for(session: Session, profile_ids: list[int], now: datetime) -> list[CallRequest]:
    """The owner's coming bookings (slots from the last half hour on), soonest first."""
    return booked.upcoming(session, profile_ids, now - timedelta(minutes=30))


def change_settings(
    session: Session,
    profile: Profile,
    *,
    enabled: bool,
    days_ahead: str,
    per_slot: str,
    actor: User | None,
    via: str,
) -> dict[str, str]:
    """The owner turns booking on or off and bounds it; checked whole before anything is
    written, and audited. Returns what was wrong (nothing written then)."""
    errors: dict[str, str] = {}
    days = _whole(days_ahead, MIN_DAYS_AHEAD, MAX_DAYS_AHEAD)
    if days is None:
        errors["scheduling_days_ahead"] = _(
            "How far ahead is a whole number of days from %(min)s to %(max)s."
        ) % {"min": MIN_DAYS_AHEAD, "max": MAX_DAYS_AHEAD}
    places = _whole(per_slot, MIN_PER_SLOT, MAX_PER_SLOT)
    if places is None:
        errors["scheduling_per_slot"] = _(
            "Bookings per time is a whole number from %(min)s to %(max)s."
        ) % {"min": MIN_PER_SLOT, "max": MAX_PER_SLOT}
    if errors or days is None or places is None:
        return errors
    profile.scheduling_enabled = enabled
    profile.scheduling_days_ahead = days
    profile.scheduling_per_slot = places
    audit.record_for_page(
        session,
        profile,
        actor=actor,
        action="profile.scheduling_changed",
        via=via,
        details={"enabled": enabled, "days_ahead": days, "per_slot": places},
    )
    return {}


def _whole(text: str, low: int, high: int) -> int | None:
    text = text.strip()
    if not text.isdigit() or len(text) > 4:
        return None
    value = int(text)
    return value if low <= value <= high else None
