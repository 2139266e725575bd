"""Take a message: a visitor whose call could not happen leaves the owner a short text.

The message is kept on the request, and the owner hears of it the ways they hear of requests:
the portal and the Call API read it from the request, a `request.message` webhook and a MESSAGE
mail notice are written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from callnow.domain.availability import is_available
from callnow.domain.left_message import MessageInvalid, clean_message, takes_message
from callnow.domain.notices import Kind
from callnow.domain.request_state import RequestState
from callnow.i18n import N_
from callnow.i18n import gettext as _
from callnow.services import public_page
from callnow.services.intake import Safeguards, Submission, submit
from callnow.services.public_page import CaptchaAnswer
from callnow.services.throttle import Throttle
from callnow.store import mail, messages, profiles, webhooks
from callnow.store.models import CallRequest, Profile

ALREADY_LEFT = N_("You have already left a message for this request.")
NOT_NOW = N_("A message can be left only when the call could not happen.")


class Refusal(StrEnum):
    THROTTLED = "throttled"  # a rate limit fired; which one is not said
    CAPTCHA_WRONG = "captcha_wrong"  # a closed page's message form needs the CAPTCHA it shows
    OPEN = "open"  # the page takes requests again: the visitor may just ask for the call
    NOT_NOW = "not_now"  # the request is still running, or it ended in a call
    ALREADY = "already"  # one message per request
    INVALID = "invalid"  # empty, too long or with control characters


@dataclass(frozen=True)
class Outcome:
    refusal: Refusal | None = None
    error: str = ""


def can_leave(call_request: CallRequest) -> bool:
    """Whether the status page offers the message form."""
    state = RequestState(call_request.state)
    return call_request.message is None and takes_message(state, call_request.reason)


def leave_message(
    session: Session,
    call_request: CallRequest,
    text: str,
    source_address: str,
    now: datetime,
    throttle: Throttle,
) -> Outcome:
    if not takes_message(RequestState(call_request.state), call_request.reason):
        return Outcome(Refusal.NOT_NOW, _(NOT_NOW))
    if call_request.message is not None:
        return Outcome(Refusal.ALREADY, _(ALREADY_LEFT))
    # Counted before the text is judged: a flood of bad posts costs its sender too.
    if not throttle.message(source_address, call_request.profile_id, session):
        return Outcome(Refusal.THROTTLED, _("Too many messages; please try again later."))
    try:
        cleaned = clean_message(text)
    except MessageInvalid as exc:
        return Outcome(Refusal.INVALID, str(exc))
    return _keep(session, call_request, cleaned, now)


def _keep(session: Session, call_request: CallRequest, cleaned: str, now: datetime) -> Outcome:
    if not messages.attach(session, call_request, cleaned, now):
        return Outcome(Refusal.ALREADY, _(ALREADY_LEFT))  # a post at the same moment won
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


@dataclass(frozen=True)
class OutOfHours:
    """What a message left on a closed page became: the request it is kept on, or why not."""

    request: CallRequest | None = None
    refusal: Refusal | None = None
    errors: dict[str, str] = field(default_factory=dict)


def leave_out_of_hours(
    session: Session,
    profile: Profile,
    submission: Submission,
    text: str,
    now: datetime,
    safeguards: Safeguards,
    captcha: CaptchaAnswer | None = None,
) -> OutOfHours:
    """A message on a page that is out of hours: kept on a request recorded as intake records
    any request then (rejected, outside hours), after the same checks of name and number."""
    if not safeguards.throttle.message(submission.source_address, profile.id, session):
        return OutOfHours(refusal=Refusal.THROTTLED)
    if public_page.captcha_required(session, profile, safeguards, now) and (
        captcha is None
        or not safeguards.captcha.verify(session, captcha.token, captcha.answer, profile.id, now)
    ):
        return OutOfHours(refusal=Refusal.CAPTCHA_WRONG)
    if is_available(profiles.windows_of(profile), now, profiles.timezone_of(profile)):
        return OutOfHours(refusal=Refusal.OPEN)
    try:
        cleaned = clean_message(text)
    except MessageInvalid as exc:
        return OutOfHours(refusal=Refusal.INVALID, errors={"message": str(exc)})
    result = submit(session, profile, submission, now, safeguards)
    if result.errors:
        return OutOfHours(refusal=Refusal.INVALID, errors=result.errors)
    if result.throttled or result.request is None:
        return OutOfHours(refusal=Refusal.THROTTLED)
    outcome = _keep(session, result.request, cleaned, now)
    if outcome.refusal is not None:  # a request already open for the number, or a rule's no
        return OutOfHours(refusal=Refusal.NOT_NOW, errors={"message": NOT_NOW})
    return OutOfHours(request=result.request)
