"""The life of a callback request, as states and the moves allowed between them."""

from __future__ import annotations

from enum import StrEnum

from callnow.i18n import N_


class RequestState(StrEnum):
    RECEIVED = "received"
    REJECTED = "rejected"
    QUEUED = "queued"
    CALLING_OWNER = "calling_owner"
    OWNER_DECLINED = "owner_declined"
    OWNER_UNREACHABLE = "owner_unreachable"
    CALLING_VISITOR = "calling_requester"
    VISITOR_UNREACHABLE = "requester_unreachable"
    CONNECTED = "connected"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # An engine died after a call may have been placed; never dialled again.
    INTERRUPTED = "interrupted"


S = RequestState
TERMINAL = frozenset(
    {
        S.REJECTED,
        S.OWNER_DECLINED,
        S.OWNER_UNREACHABLE,
        S.VISITOR_UNREACHABLE,
        S.COMPLETED,
        S.FAILED,
        S.CANCELLED,
        S.INTERRUPTED,
    }
)
# An engine holds the request and a call may be under way.
IN_CALL = frozenset({S.CALLING_OWNER, S.CALLING_VISITOR, S.CONNECTED})
# The visitor may cancel until we start calling them back.
VISITOR_CANCELLABLE = frozenset({S.QUEUED, S.CALLING_OWNER})
_ALLOWED: dict[RequestState, frozenset[RequestState]] = {
    S.RECEIVED: frozenset({S.REJECTED, S.QUEUED, S.FAILED}),
    # From queued straight to declined/unreachable: the owner answered (or not) on the web.
    # Interrupted: an engine died after writing a leg row but before the request moved on.
    S.QUEUED: frozenset(
        {
            S.CALLING_OWNER,
            S.CANCELLED,
            S.FAILED,
            S.REJECTED,
            S.OWNER_DECLINED,
            S.OWNER_UNREACHABLE,
            S.INTERRUPTED,
        }
    ),
    S.CALLING_OWNER: frozenset(
        {
            S.CALLING_VISITOR,
            S.OWNER_DECLINED,
            S.OWNER_UNREACHABLE,
            S.CANCELLED,
            S.FAILED,
            S.INTERRUPTED,
        }
    ),
    S.CALLING_VISITOR: frozenset(
        {S.CONNECTED, S.VISITOR_UNREACHABLE, S.COMPLETED, S.FAILED, S.INTERRUPTED}
    ),
    S.CONNECTED: frozenset({S.COMPLETED, S.FAILED, S.INTERRUPTED}),
}


class IllegalTransition(ValueError):
    pass


def is_terminal(state: RequestState) -> bool:
    return state in TERMINAL


def check_transition(current: RequestState, new: RequestState) -> None:
    if new not in _ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"a request cannot go from {current} to {new}")


def states_before(new: RequestState) -> frozenset[RequestState]:
    """Every state a request may move to `new` from."""
    return frozenset(current for current, nexts in _ALLOWED.items() if new in nexts)


# What a visitor reads for each state: plain words, no jargon (marked for translation; shown
# through gettext in the reader's language).
VISITOR_TEXT: dict[RequestState, str] = {
    S.RECEIVED: N_("We have your request."),
    S.REJECTED: N_("Sorry, this call back cannot be arranged right now."),
    S.QUEUED: N_("Your request is waiting; we will call the owner in a moment."),
    S.CALLING_OWNER: N_("We are calling the owner now."),
    S.OWNER_DECLINED: N_("The owner cannot take your call right now."),
    S.OWNER_UNREACHABLE: N_("We could not reach the owner. Please try again later."),
    S.CALLING_VISITOR: N_("The owner accepted — we are calling you now."),
    S.VISITOR_UNREACHABLE: N_("We could not reach you on the number you gave."),
    S.CONNECTED: N_("You are connected."),
    S.COMPLETED: N_("The call has finished. Thank you."),
    S.FAILED: N_("Something went wrong and the call could not be made."),
    S.CANCELLED: N_("The request was cancelled."),
    S.INTERRUPTED: N_("The call was interrupted."),
}
