"""What the visitor reads about their request, in the owner's shown name.

The owner may hide their name; the page then speaks of "the person you asked" rather than the
impersonal "the owner". A request waiting for the owner's click in the portal says so, with
how long it may wait, instead of promising a call "in a moment"; so does one waiting for an
owner whose phone has just answered busy.

Each sentence exists whole twice, with the name and with the neutral phrase, so a translation
never has to fit a name and a phrase into one grammatical slot. The words are in the language
now in use (`callnow.i18n`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from callnow.domain.request_state import VISITOR_TEXT, RequestState
from callnow.i18n import gettext as _
from callnow.i18n import ngettext


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the visitor asked, and how their request waits."""

    owner_name: str | None  # the shown name; None when the owner hides it
    web_wait: timedelta | None = None  # set while the request waits for a click in the portal
    booked_for: str | None = None  # a booked request's slot, on the owner's clock with its zone
    # The owner's phone answered busy moments ago: the request waits until they are free.
    owner_on_a_call: bool = False


def _minutes(wait: timedelta) -> int:
    return max(1, int(wait.total_seconds() // 60))


def _named(state: RequestState, reason: str, name: str, calling_from: str) -> str | None:
    if state is RequestState.QUEUED:
        return _("Your request is waiting; we will call %(name)s in a moment.") % {"name": name}
    if state is RequestState.CALLING_OWNER:
        return _("We are calling %(name)s now.") % {"name": name}
    if state is RequestState.CALLING_VISITOR:
        return _("%(name)s accepted — we are calling you now from %(number)s.") % {
            "name": name,
            "number": calling_from,
        }
    if state is RequestState.OWNER_DECLINED:
        return _("%(name)s cannot take your call right now.") % {"name": name}
    if state is RequestState.OWNER_UNREACHABLE:
        return _("We could not reach %(name)s. Please try again later.") % {"name": name}
    if state is RequestState.REJECTED and reason == "outside_hours":
        return _(
            "%(name)s is not taking calls at this time. Please try again during their hours."
        ) % {"name": name}
    return None


def _neutral(state: RequestState, reason: str, calling_from: str) -> str | None:
    if state is RequestState.QUEUED:
        return _("Your request is waiting; we will call the person you asked in a moment.")
    if state is RequestState.CALLING_OWNER:
        return _("We are calling the person you asked now.")
    if state is RequestState.CALLING_VISITOR:
        return _("The person you asked accepted — we are calling you now from %(number)s.") % {
            "number": calling_from
        }
    if state is RequestState.OWNER_DECLINED:
        return _("The person you asked cannot take your call right now.")
    if state is RequestState.OWNER_UNREACHABLE:
        return _("We could not reach the person you asked. Please try again later.")
    if state is RequestState.REJECTED and reason == "outside_hours":
        return _(
            "The person you asked is not taking calls at this time. "
            "Please try again during their hours."
        )
    return None


def visitor_message(state: RequestState, reason: str, calling_from: str, audience: Audience) -> str:
    if state is RequestState.QUEUED and audience.booked_for is not None:
        if audience.owner_name:
            return _("Booked for %(when)s. We will call %(name)s then, and then you.") % {
                "when": audience.booked_for,
                "name": audience.owner_name,
            }
        return _("Booked for %(when)s. We will call the person you asked then, and then you.") % {
            "when": audience.booked_for
        }
    if state is RequestState.QUEUED and audience.web_wait is not None:
        minutes = _minutes(audience.web_wait)
        if audience.owner_name:
            text = ngettext(
                "Waiting for %(name)s to accept; this can take up to %(num)d minute.",
                "Waiting for %(name)s to accept; this can take up to %(num)d minutes.",
                minutes,
            )
            return text % {"name": audience.owner_name, "num": minutes}
        text = ngettext(
            "Waiting for the person you asked to accept; this can take up to %(num)d minute.",
            "Waiting for the person you asked to accept; this can take up to %(num)d minutes.",
            minutes,
        )
        return text % {"num": minutes}
    if state is RequestState.QUEUED and audience.owner_on_a_call:
        if audience.owner_name:
            return _(
                "%(name)s is on another call. Your request is waiting; we will call them as "
                "soon as they are free."
            ) % {"name": audience.owner_name}
        return _(
            "The person you asked is on another call. Your request is waiting; we will call "
            "them as soon as they are free."
        )
    if audience.owner_name:
        said = _named(state, reason, audience.owner_name, calling_from)
    else:
        said = _neutral(state, reason, calling_from)
    return said if said is not None else _(VISITOR_TEXT[state])


# The visitor's view of the journey: the steps' labels, and the index of the step each state
# is at (every final state is "Finished").
STEP_COUNT = 5
_STEP_OF: dict[RequestState, int] = {
    RequestState.RECEIVED: 0,
    RequestState.QUEUED: 0,
    RequestState.CALLING_OWNER: 1,
    RequestState.CALLING_VISITOR: 2,
    RequestState.CONNECTED: 3,
}
FINISHED_STEP = STEP_COUNT - 1


def step_of(state: RequestState) -> int:
    """The index in the step labels of where the request is; every final state is "Finished"."""
    return _STEP_OF.get(state, FINISHED_STEP)


def step_labels(audience: Audience) -> list[str]:
    if audience.owner_name:
        ringing = _("Ringing %(name)s") % {"name": audience.owner_name}
    else:
        ringing = _("Ringing the person you asked")
    # A booking waits for its time, not in a queue: its first step says so.
    first = _("Booked") if audience.booked_for is not None else _("Queued")
    return [first, ringing, _("Calling you"), _("Connected"), _("Finished")]
