"""The visitor's use cases on an owner's public page: find the page, ask for a callback.

The public form and the one-step link go through one safeguard pipeline, in one order (cheap
and per-source first, then the page's own volume, then the CAPTCHA, then the owner's hours,
then intake); the routes in `web/public.py` only turn its result into a page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from callnow.domain.availability import is_available
from callnow.domain.link_preview import is_look_only
from callnow.domain.page import is_paused
from callnow.services import scheduling
from callnow.services.intake import Safeguards, Submission, check_fields, submit
from callnow.store import audit, page_alerts, profiles, retired_ids
from callnow.store.held_pages import HeldPages
from callnow.store.models import CallRequest, Profile

# Longer than any CallNow ID (32) with room for a typo; anything longer is not looked up.
MAX_LOOKUP_CHARS = 64


def visible_page(
    session: Session, callnow_id: str, now: datetime, pages: HeldPages
) -> Profile | None:
    """A page an outsider may see. Unknown, disabled, do-not-allow, paused, suspended IDs and
    tenants without Call API access (or suspended) all look alike, so a prober learns nothing.
    `pages`: the pages this process keeps between visits (a visit then reads one row)."""
    if not callnow_id or len(callnow_id) > MAX_LOOKUP_CHARS:
        return None
    profile = pages.by_callnow_id(session, callnow_id)
    if profile is None or not profile.enabled or profile.do_not_allow:
        return None
    if is_paused(profile.paused_until, now):
        return None
    tenant = profiles.tenant_of(profile)
    if not tenant.call_api_access or profile.suspended_at or tenant.suspended_at:
        return None  # suspended by the provider: looks like any other hidden page
    return profile


def renamed_to(session: Session, callnow_id: str, now: datetime, pages: HeldPages) -> str | None:
    """The page's current ID when `callnow_id` is one it gave up and it is still visible:
    printed links and QR codes keep working after a rename."""
    if not callnow_id or len(callnow_id) > MAX_LOOKUP_CHARS:
        return None
    current = retired_ids.current_id(session, callnow_id)
    if current is None or visible_page(session, current, now, pages) is None:
        return None
    return current


def captcha_required(
    session: Session, profile: Profile, safeguards: Safeguards, now: datetime
) -> bool:
    """The owner's choice, on by itself while the page sees unusual volume, or held on for a
    while after a spike."""
    return _needs_captcha(
        session, profile, now, lambda: safeguards.throttle.page_is_busy(profile.id, session)
    )


def _needs_captcha(
    session: Session, profile: Profile, now: datetime, busy: Callable[[], bool]
) -> bool:
    return (
        profile.image_validation or busy() or page_alerts.captcha_forced(session, profile.id, now)
    )


def one_step_possible(
    session: Session,
    profile: Profile,
    safeguards: Safeguards,
    now: datetime,
    method: str,
    headers: Mapping[str, str],
) -> bool:
    """A link may place the request itself only where the owner allowed it and no CAPTCHA is
    asked for: the owner then pays for every call such a link causes. A preview, prefetch or
    link scanner only looks: it gets the filled-in form and places nothing."""
    if is_look_only(method, headers):
        return False
    return profile.one_step_allowed and not captcha_required(session, profile, safeguards, now)


def captcha_for_spike(
    session: Session, profile: Profile, now: datetime, safeguards: Safeguards
) -> None:
    """Posts jumped far above normal: the page asks every visitor for the CAPTCHA for a while
    and the owner is told (a webhook, an audit row, and the alert row the mail outbox reads).
    The page stays reachable: a flood never hides it; pausing is the owner's or an admin's."""
    alert = page_alerts.raise_flood(session, profile, now, now + safeguards.spike_captcha)
    if alert is None:  # already under CAPTCHA for this spike; the owner was told
        return
    minutes = int(safeguards.spike_captcha.total_seconds() // 60)
    audit.record_for_page(
        session,
        profile,
        actor=None,
        action="profile.captcha_forced",
        via="spike detector",
        details={"minutes": minutes, "reason": "unusual volume of requests"},
    )


class Refusal(StrEnum):
    """Why a page request placed nothing."""

    THROTTLED = "throttled"  # a rate limit fired; which one is deliberately not said
    CAPTCHA_WRONG = "captcha_wrong"  # needed and missing, wrong, spent or expired
    CLOSED = "closed"  # outside the owner's hours
    INVALID = "invalid"  # a field is wrong: see `errors`


@dataclass(frozen=True)
class CaptchaAnswer:
    token: str
    answer: str


@dataclass
class PageOutcome:
    request: CallRequest | None = None
    refusal: Refusal | None = None
    errors: dict[str, str] = field(default_factory=dict)


def ask_for_callback(
    session: Session,
    profile: Profile,
    submission: Submission,
    now: datetime,
    safeguards: Safeguards,
    captcha: CaptchaAnswer | None = None,
    *,
    slot: str | None = None,
    owner_name: str | None = None,
) -> PageOutcome:
    """The one pipeline of the public form, the one-step link and the booking form (`slot`:
    the posted slot; the slot's checks then stand where the owner's hours stand)."""
    # The source's limits first (nothing else is counted when they refuse), then the page's
    # volume: one round of statements. "Busy" is as it was before this post counted (as
    # `captcha_required` said when the form was shown), so the post that tips the page over
    # the adaptive threshold is not refused for a CAPTCHA its visitor was never shown. A spike
    # is different: from then on every post needs the CAPTCHA, this one included.
    # What needs no database is worked out first: the count below is the post's first write,
    # and from there until its commit the post holds the database's write turn. The results
    # still count in the order they always did (an invalid post is counted, and refused after).
    checked = check_fields(profile, submission)
    open_now = slot is not None or is_available(
        profiles.windows_of(profile), now, profiles.timezone_of(profile)
    )
    posted = safeguards.throttle.attempt_on_page(submission.source_address, profile.id, session)
    if posted is None:
        return PageOutcome(refusal=Refusal.THROTTLED)
    needs_captcha = _needs_captcha(session, profile, now, lambda: posted.busy)
    if posted.spike:
        captcha_for_spike(session, profile, now, safeguards)
        needs_captcha = True
    if needs_captcha and (
        captcha is None
        or not safeguards.captcha.verify(session, captcha.token, captcha.answer, profile.id, now)
    ):
        return PageOutcome(refusal=Refusal.CAPTCHA_WRONG)
    scheduled_for = None
    if slot is not None:
        scheduled_for, slot_error = scheduling.check_slot(session, profile, slot, now, owner_name)
        if slot_error is not None:
            return PageOutcome(refusal=Refusal.INVALID, errors={"slot": slot_error})
    elif not open_now:
        return PageOutcome(refusal=Refusal.CLOSED)
    result = submit(
        session, profile, submission, now, safeguards, scheduled_for=scheduled_for, checked=checked
    )
    if result.throttled:
        return PageOutcome(refusal=Refusal.THROTTLED)
    if result.errors:
        return PageOutcome(refusal=Refusal.INVALID, errors=result.errors)
    return PageOutcome(request=result.request)
