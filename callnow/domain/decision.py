"""What happens to a new callback request: rejected, or queued to call the owner first or not.

The public page, the one-step link and the Call API all ask this one function, so an owner's
settings mean the same thing wherever a request comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from callnow.domain.availability import Window, is_available
from callnow.domain.phone import VisitorNumber
from callnow.domain.rules import Rule, RuleAction, first_matching


class Outcome(StrEnum):
    REJECT = "reject"
    CONFIRM = "confirm"  # ring the owner and wait for their key
    CONFIRM_ON_WEB = "confirm_web"  # wait until the owner accepts in the portal
    ACCEPT = "accept"  # ring the owner with a short whisper, then call back at once
    # Not an outcome of `decide`: what a CONFIRM_ON_WEB request becomes once the owner accepted
    # it in the portal (ring them with a whisper, no keypad).
    ACCEPTED_ON_WEB = "web"


class RejectReason(StrEnum):
    DISABLED = "disabled"
    NOT_ACCEPTING = "not_accepting"  # the owner's "do not allow people to contact me"
    OUTSIDE_HOURS = "outside_hours"
    RULE = "rule"
    # The owner declined this number a short while ago; it may not ring them again yet.
    DECLINED_RECENTLY = "declined_recently"


@dataclass(frozen=True, slots=True)
class OwnerPreferences:
    enabled: bool
    do_not_allow: bool
    confirmation_required: bool
    windows: Sequence[Window]
    timezone: ZoneInfo
    rules: Sequence[Rule]
    confirm_on_web: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str  # a RejectReason, or why it is confirm/accept ("default", "rule 2")


def decide(
    prefs: OwnerPreferences,
    number: VisitorNumber,
    name: str | None,
    now: datetime,
    *,
    recently_declined: bool = False,
) -> Decision:
    if not prefs.enabled:
        return Decision(Outcome.REJECT, RejectReason.DISABLED)
    if prefs.do_not_allow:
        return Decision(Outcome.REJECT, RejectReason.NOT_ACCEPTING)
    rule = first_matching(prefs.rules, number, name)
    position = f"rule {list(prefs.rules).index(rule) + 1}" if rule else "default"
    # A reject rule wins over everything: a blocked caller learns nothing about the hours.
    if rule is not None and rule.action is RuleAction.REJECT:
        return Decision(Outcome.REJECT, RejectReason.RULE)
    if not is_available(prefs.windows, now, prefs.timezone):
        return Decision(Outcome.REJECT, RejectReason.OUTSIDE_HOURS)
    if recently_declined:
        return Decision(Outcome.REJECT, RejectReason.DECLINED_RECENTLY)
    confirm = Outcome.CONFIRM_ON_WEB if prefs.confirm_on_web else Outcome.CONFIRM
    if rule is not None:
        return Decision(Outcome.ACCEPT if rule.action is RuleAction.ACCEPT else confirm, position)
    return Decision(confirm if prefs.confirmation_required else Outcome.ACCEPT, position)
