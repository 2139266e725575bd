"""What the visitor's pages say around the form and the request: the owner's shown name, which
numbers are accepted, times in the owner's zone, where the request is, and what to do next.

The routes render these; the wording rules live here and in `domain/visitor_text.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from callnow.domain import web_confirmation
from callnow.domain.availability import MINUTES_PER_DAY, is_available, next_opening
from callnow.domain.number_hint import number_hint
from callnow.domain.request_state import RequestState, is_terminal
from callnow.domain.visitor_text import Audience, step_labels, step_of
from callnow.i18n import formats
from callnow.i18n import gettext as _
from callnow.store import profiles
from callnow.store.models import CallRequest, Profile


def owner_name(profile: Profile) -> str | None:
    return profile.extension.display_name if profile.show_name else None


def audience_of(call_request: CallRequest, now: datetime | None = None) -> Audience:
    """Who the visitor asked and how their request waits; with `now`, also whether it waits
    for an owner held after their phone answered busy (the engine's `owner_busy_hold_s`)."""
    web_wait = web_confirmation.DEFAULT_TIMEOUT if call_request.decision == "confirm_web" else None
    booked_for = None
    if call_request.scheduled_for is not None:
        booked_for = local_time(call_request.profile, call_request.scheduled_for)
    on_a_call = now is not None and owner_held(call_request.profile.extension.busy_until, now)
    return Audience(owner_name(call_request.profile), web_wait, booked_for, on_a_call)


def owner_held(busy_until: datetime | None, now: datetime) -> bool:
    """Whether the owner is still held after their phone answered busy (see `audience_of`)."""
    return busy_until is not None and busy_until > now


def hint_for(profile: Profile) -> str:
    tenant = profiles.tenant_of(profile)
    return number_hint({tenant.region, *(tenant.extra_countries or [])}, tenant.region)


def privacy_note(profile: Profile) -> str:
    name = owner_name(profile)
    if name:
        return _(
            "Your number is used only to call you back for this request; "
            "%(name)s sees your name and number."
        ) % {"name": name}
    return _(
        "Your number is used only to call you back for this request; "
        "the person you asked sees your name and number."
    )


def local_time(profile: Profile, moment: datetime) -> str:
    """'Thu, Dec 3, 2026, 2:30 AM (Australian Eastern Daylight Time)': the owner's clock,
    with its zone named, as the visitor's language writes them."""
    tz = profiles.timezone_of(profile)
    return _("%(time)s (%(zone)s)") % {
        "time": formats.date_time(moment, tz),
        "zone": formats.zone_name(moment, tz),
    }


def zone_label(profile: Profile, now: datetime) -> str:
    """The owner's zone as the hours are given in: its name in the language now."""
    return formats.zone_name(now, profiles.timezone_of(profile))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def hours_lines(profile: Profile) -> list[str]:
    """The owner's hours, a line per window, with the days named in the language now."""
    lines = []
    windows = sorted(profiles.windows_of(profile), key=lambda w: (w.weekday, w.start_minute))
    for window in windows:
        day = formats.day_name(window.weekday)
        if window.start_minute == 0 and window.end_minute in (0, MINUTES_PER_DAY):
            lines.append(_("%(day)s all day") % {"day": day})
            continue
        values = {
            "day": day,
            "start": _clock(window.start_minute),
            "end": _clock(window.end_minute % MINUTES_PER_DAY),
        }
        if window.crosses_midnight and window.end_minute:
            lines.append(_("%(day)s %(start)s–%(end)s (next day)") % values)
        else:
            lines.append(_("%(day)s %(start)s–%(end)s") % values)
    return lines


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
    name = audience.owner_name
    back = _("Back to %(name)s's page") % {"name": name} if name else _("Back to the page")
    if state is RequestState.COMPLETED:
        return NextStep(_("Need to talk again? You can ask for another call back."), back, href)
    if state is RequestState.OWNER_DECLINED:
        ended = call_request.events[-1].at if call_request.events else now
        again = max(ended + decline_cooldown, now)
        return NextStep(
            _("You can ask again after %(time)s.") % {"time": local_time(profile, again)},
            _("Try again later"),
            href,
        )
    windows = profiles.windows_of(profile)
    tz = profiles.timezone_of(profile)
    if not is_available(windows, now, tz):
        opening = next_opening(windows, now, tz)
        when = local_time(profile, opening) if opening else None
        return NextStep(_again_from(name, when), back, href)
    return NextStep(_("You can ask for a call back again now."), _("Try again"), href)


def _again_from(name: str | None, when: str | None) -> str:
    if name and when:
        return _("%(name)s takes requests again from %(time)s.") % {"name": name, "time": when}
    if name:
        return _("%(name)s takes requests again during their hours.") % {"name": name}
    if when:
        return _("The person you asked takes requests again from %(time)s.") % {"time": when}
    return _("The person you asked takes requests again during their hours.")
