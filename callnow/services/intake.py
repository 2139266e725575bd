"""Taking a callback request in: validate, ask the domain, store. Used by the page and the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

import structlog
from sqlalchemy.orm import Session

from callnow.domain.decision import Outcome, decide
from callnow.domain.destination_policy import PrefixList, check_visitor_number
from callnow.domain.names import InvalidName, clean_visitor_name
from callnow.domain.number_hint import visitor_refusal
from callnow.domain.phone import InvalidNumber, VisitorNumber, parse_visitor_number
from callnow.domain.request_state import RequestState
from callnow.i18n import gettext as _
from callnow.services.captcha import CaptchaBook
from callnow.services.throttle import Throttle
from callnow.store import profiles, wakeup
from callnow.store import requests as request_store
from callnow.store.db import after_commit
from callnow.store.models import CallRequest, Profile
from callnow.store.profiles import destination_policy
from callnow.store.recorder import request_ref

log = structlog.get_logger(__name__)


@dataclass
class Submission:
    name: str | None
    number: str
    source_address: str
    user_agent: str
    channel: str  # web, one_step, api


@dataclass
class IntakeResult:
    request: CallRequest | None = None
    errors: dict[str, str] = field(default_factory=dict)
    # True when an open request for the same number was returned instead of a new one.
    existing: bool = False
    # True when a rate limit refused it; which one is deliberately not said.
    throttled: bool = False


@dataclass(frozen=True)
class CheckedFields:
    """The visitor's name and number as checked, or what is wrong with them. Checking needs no
    database, so the public form does it before its first write (see `check_fields`)."""

    name: str | None = None
    number: VisitorNumber | None = None
    errors: dict[str, str] = field(default_factory=dict)


def check_fields(profile: Profile, submission: Submission) -> CheckedFields:
    """Clean the name and classify the number in the page's region.

    The public form calls it before it counts the post: from its first write until its commit
    a post holds the database's write turn, and every other post waits for what it does there.
    Its result is used no earlier than before."""
    errors: dict[str, str] = {}
    name: str | None = None
    try:
        name = clean_visitor_name(submission.name)
    except InvalidName as exc:
        errors["name"] = str(exc)
    if name is None and "name" not in errors and profile.require_caller_name:
        errors["name"] = _("Please tell the owner your name.")
    number: VisitorNumber | None = None
    try:
        number = parse_visitor_number(submission.number, profiles.tenant_of(profile).region)
    except InvalidNumber as exc:
        errors["number"] = str(exc)
    if errors:
        return CheckedFields(errors=errors)
    return CheckedFields(name, number)


@dataclass(frozen=True)
class Safeguards:
    """The platform-wide protections every intake path goes through.

    Source limits are counted by the public routes before anything else (a failed CAPTCHA is an
    attempt too); API calls come from the owner's own systems and meet the target limits here.
    """

    throttle: Throttle
    platform_prefixes: PrefixList
    captcha: CaptchaBook
    # After an owner declines, the same number cannot ring that owner again for this long.
    decline_cooldown: timedelta = timedelta(hours=1)
    # How long a page whose requests spiked far above normal stays paused.
    spike_captcha: timedelta = timedelta(minutes=60)  # how long a spike keeps the CAPTCHA on
    # Told (channel, decision) of each request taken in, once committed: the metrics' count,
    # bounded labels.
    counted: Callable[[str, str], None] = lambda channel, decision: None


def submit(
    session: Session,
    profile: Profile,
    submission: Submission,
    now: datetime,
    safeguards: Safeguards,
    *,
    api_key_id: int | None = None,
    idempotency_key: str | None = None,
    scheduled_for: datetime | None = None,
    checked: CheckedFields | None = None,
) -> IntakeResult:
    """Take a request in; with `scheduled_for` (a slot the caller checked) it is a booking: the
    owner's hours and rules are asked for that time, and the engine asks them again then.
    `checked`: the submission's fields, if the caller checked them already."""
    checked = checked or check_fields(profile, submission)
    if checked.errors:
        return IntakeResult(errors=checked.errors)
    name, number = checked.name, checked.number
    assert number is not None  # no errors: both fields were checked
    tenant = profiles.tenant_of(profile)
    policy = destination_policy(tenant, safeguards.platform_prefixes)

    def refused() -> IntakeResult:  # worded only when needed: it names countries (Babel)
        return IntakeResult(
            errors={"number": visitor_refusal(policy.allowed_regions, tenant.region)}
        )

    if check_visitor_number(number, policy):
        return refused()
    standing = request_store.standing_of(
        session, profile.id, number.e164, since=now - safeguards.decline_cooldown
    )
    if standing.do_not_call:
        return refused()
    # One number, one call: a request still in progress is returned, not repeated.
    if standing.open_request_id is not None:
        pending = session.get(CallRequest, standing.open_request_id)
        after_commit(session, partial(safeguards.counted, submission.channel, "existing"))
        return IntakeResult(request=pending, existing=True)

    decision = decide(
        profiles.preferences_of(profile),
        number,
        name,
        scheduled_for or now,
        recently_declined=standing.declined_since,
    )
    if scheduled_for is not None and decision.outcome is Outcome.CONFIRM_ON_WEB:
        # A portal click waits minutes, not days: a booked call is confirmed on the phone.
        decision = replace(decision, outcome=Outcome.CONFIRM)
    final = RequestState.REJECTED if decision.outcome is Outcome.REJECT else RequestState.QUEUED
    if final is RequestState.QUEUED and not safeguards.throttle.owner_call(
        profile.id, number.e164, session
    ):
        after_commit(session, partial(safeguards.counted, submission.channel, "throttled"))
        return IntakeResult(throttled=True)
    request = request_store.record_new(
        session,
        profile=profile,
        caller_name=name,
        number_typed=submission.number,
        number_e164=number.e164,
        source_address=submission.source_address,
        user_agent=submission.user_agent,
        channel=submission.channel,
        decision=decision.outcome.value,
        reason=str(decision.reason),
        final_state=final,
        now=now,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        scheduled_for=scheduled_for,
    )
    if final is RequestState.QUEUED:
        wakeup.queued(session)
    # Every later line of this web request names the callback request, as the engine's do.
    structlog.contextvars.bind_contextvars(request_ref=request_ref(request.id))

    def taken_in() -> None:
        """Said and counted once it is stored, outside the database's write turn, in this
        request's log context (`after_commit` keeps it) whichever thread commits."""
        log.info(
            "request_received",
            channel=submission.channel,
            decision=decision.outcome.value,
            reason=str(decision.reason),
            scheduled_for=scheduled_for.isoformat() if scheduled_for else None,
        )
        safeguards.counted(submission.channel, decision.outcome.value)

    after_commit(session, taken_in)
    return IntakeResult(request=request)
