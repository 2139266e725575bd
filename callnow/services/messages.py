"""Take a message: a visitor whose call could not happen leaves the owner a short text.

The message is kept on the request, and the owner hears of it the ways they hear of requests:
the portal and the Call API read it from the request, a `request.message` webhook and a MESSAGE
mail notice are written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from callnow.domain.left_message import MessageInvalid, clean_message, takes_message
from callnow.domain.notices import Kind
from callnow.domain.request_state import RequestState
from callnow.services.throttle import Throttle
from callnow.store import mail, messages, webhooks
from callnow.store.models import CallRequest

ALREADY_LEFT = "You have already left a message for this request."
NOT_NOW = "A message can be left only when the call could not happen."


class Refusal(StrEnum):
    THROTTLED = "throttled"  # a rate limit fired; which one is not said
    NOT_NOW = "not_now"  # the request is still running, or it ended in a call
    ALREADY = "already"  # one message per request
    INVALID = "invalid"  # empty, too long or with control characters


@dataclass(frozen=True)
class Outcome:
    refusal: Refusal | None = None
    error: str = ""


def can_leave(call_request: CallRequest) -> bool:
    """Whether the status page offers the message form."""
    return call_request.message is None and takes_message(RequestState(call_request.state))


def leave_message(
    session: Session,
    call_request: CallRequest,
    text: str,
    source_address: str,
    now: datetime,
    throttle: Throttle,
) -> Outcome:
    if not takes_message(RequestState(call_request.state)):
        return Outcome(Refusal.NOT_NOW, NOT_NOW)
    if call_request.message is not None:
        return Outcome(Refusal.ALREADY, ALREADY_LEFT)
    # Counted before the text is judged: a flood of bad posts costs its sender too.
    if not throttle.message(source_address, call_request.profile_id, session):
        return Outcome(Refusal.THROTTLED, "Too many messages; please try again later.")
    try:
        cleaned = clean_message(text)
    except MessageInvalid as exc:
        return Outcome(Refusal.INVALID, str(exc))
    if not messages.attach(session, call_request, cleaned, now):
        return Outcome(Refusal.ALREADY, ALREADY_LEFT)  # a post at the same moment won
    webhooks.enqueue_message(session, call_request)
    owner = call_request.profile.extension.owner_user_id
    if owner is not None:
        mail.enqueue(
            session,
            user_id=owner,
            kind=Kind.MESSAGE,
            request_id=call_request.id,
            details={
                "token": call_request.token,
                "callnow_id": call_request.profile.callnow_id,
                "name": call_request.caller_name or "",
                "number": call_request.number_e164,
                "text": cleaned,
            },
        )
    return Outcome()
