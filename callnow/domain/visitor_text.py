"""What the visitor reads about their request, in the owner's shown name.

The owner may hide their name; the page then speaks of "the person you asked" rather than the
impersonal "the owner". A request waiting for the owner's click in the portal says so, with
how long it may wait, instead of promising a call "in a moment".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from callnow.domain.request_state import VISITOR_TEXT, RequestState
from callnow.i18n import gettext as _

NEUTRAL_OWNER = "the person you asked"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the visitor asked, and how their request waits."""

    owner_name: str | None  # the shown name; None when the owner hides it
    web_wait: timedelta | None = None  # set while the request waits for a click in the portal
    booked_for: str | None = None  # a booked request's slot, on the owner's clock with its zone

    @property
    def who(self) -> str:
        return self.owner_name or NEUTRAL_OWNER

    @property
    def who_first(self) -> str:
        """`who` at the start of a sentence."""
        return self.who[:1].upper() + self.who[1:]


def _minutes(wait: timedelta) -> int:
    return max(1, int(wait.total_seconds() // 60))


def visitor_message(
    state: RequestState, reason: str, calling_from: str, audience: Audience
) -> str:
    who, who_first = audience.who, audience.who_first
    if state is RequestState.QUEUED and audience.booked_for is not None:
        return _("Booked for %(when)s. We will call %(who)s then, and then you.") % {
            "when": audience.booked_for,
            "who": who,
        }
    if state is RequestState.QUEUED and audience.web_wait is not None:
        minutes = _minutes(audience.web_wait)
        return f"Waiting for {who} to accept; this can take up to {minutes} minutes."
    if state is RequestState.QUEUED:
        return f"Your request is waiting; we will call {who} in a moment."
    if state is RequestState.CALLING_OWNER:
        return f"We are calling {who} now."
    if state is RequestState.CALLING_VISITOR:
        return f"{who_first} accepted — we are calling you now from {calling_from}."
    if state is RequestState.OWNER_DECLINED:
        return f"{who_first} cannot take your call right now."
    if state is RequestState.OWNER_UNREACHABLE:
        return f"We could not reach {who}. Please try again later."
    if state is RequestState.REJECTED and reason == "outside_hours":
        return f"{who_first} is not taking calls at this time. Please try again during their hours."
    return VISITOR_TEXT[state]


# The visitor's view of the journey: (label, the states that are at or past that step).
STEPS: tuple[str, ...] = (
    "Queued",
    "Ringing {who}",
    "Calling you",
    "Connected",
    "Finished",
)
_STEP_OF: dict[RequestState, int] = {
    RequestState.RECEIVED: 0,
    RequestState.QUEUED: 0,
    RequestState.CALLING_OWNER: 1,
    RequestState.CALLING_VISITOR: 2,
    RequestState.CONNECTED: 3,
}
FINISHED_STEP = len(STEPS) - 1


def step_of(state: RequestState) -> int:
    """The index in STEPS of where the request is; every final state is "Finished"."""
    return _STEP_OF.get(state, FINISHED_STEP)


def step_labels(audience: Audience) -> list[str]:
    if audience.booked_for is not None:  # honest: it waits for its time, not in a queue
        labels = [label.format(who=audience.who) for label in STEPS]
        return [_("Booked"), *labels[1:]]
    return [label.format(who=audience.who) for label in STEPS]
