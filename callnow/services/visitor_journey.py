"""What the visitor's pages say around the form and the request: the owner's shown name, which
numbers are accepted, times in the owner's zone, where the request is, and what to do next.

The routes render these; the wording rules live here and in `domain/visitor_text.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from callnow.domain import web_confirmation
from callnow.domain.availability import is_available, next_opening
from callnow.domain.number_hint import number_hint
from callnow.domain.request_state import RequestState, is_terminal
from callnow.domain.visitor_text import Audience, step_labels, step_of
from callnow.store import profiles
from callnow.store.models import CallRequest, Profile

PRIVACY_NOTE = (
    "Your number is used only to call you back for this request; {who} sees your name and number."
)


def owner_name(profile: Profile) -> str | None:
    return profile.extension.display_name if profile.show_name else None


def audience_of(call_request: CallRequest) -> Audience:
    web_wait = web_confirmation.DEFAULT_TIMEOUT if call_request.decision == "confirm_web" else None
    booked_for = None
    if call_request.scheduled_for is not None:
        booked_for = local_time(call_request.profile, call_request.scheduled_for)
    return Audience(owner_name(call_request.profile), web_wait, booked_for)


def hint_for(profile: Profile) -> str:
    tenant = profiles.tenant_of(profile)
    return number_hint({tenant.region, *(tenant.extra_countries or [])}, tenant.region)


def privacy_note(profile: Profile) -> str:
    return PRIVACY_NOTE.format(who=Audience(owner_name(profile)).who)


def local_time(profile: Profile, moment: datetime) -> str:
    """'Thu 03 Dec 2026 02:30 AEDT (Australia/Sydney)': the owner's clock, with its name."""
    tz = profiles.timezone_of(profile)
    local = moment.astimezone(tz)
    return f"{local.strftime('%a %d %b %Y %H:%M %Z')} ({tz.key})"


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    current: bool


def steps(call_request: CallRequest) -> list[Step]:
    at = step_of(RequestState(call_request.state))
    labels = step_labels(audience_of(call_request))
    return [Step(label, i < at, i == at) for i, label in enumerate(labels)]


@dataclass(frozen=True)
class NextStep:
    """What a final status page offers: a sentence and a link back to the page."""

    text: str
    link_text: str
    href: str


def next_step(
    call_request: CallRequest, now: datetime, decline_cooldown: timedelta
) -> NextStep | None:
    state = RequestState(call_request.state)
    if not is_terminal(state):
        return None
    profile = call_request.profile
    audience = audience_of(call_request)
    href = f"/callnow/{profile.callnow_id}"
    back = f"Back to {audience.who}'s page" if audience.owner_name else "Back to the page"
    if state is RequestState.COMPLETED:
        return NextStep("Need to talk again? You can ask for another call back.", back, href)
    if state is RequestState.OWNER_DECLINED:
        ended = call_request.events[-1].at if call_request.events else now
        again = max(ended + decline_cooldown, now)
        return NextStep(
            f"You can ask again after {local_time(profile, again)}.", "Try again later", href
        )
    windows = profiles.windows_of(profile)
    tz = profiles.timezone_of(profile)
    if not is_available(windows, now, tz):
        opening = next_opening(windows, now, tz)
        when = f" from {local_time(profile, opening)}" if opening else " during their hours"
        return NextStep(f"{audience.who_first} takes requests again{when}.", back, href)
    return NextStep("You can ask for a call back again now.", "Try again", href)
