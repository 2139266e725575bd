"""Which numbers CallNow may call at the owner's expense.

Checked before a request is stored as callable and again before the trunk INVITE. Countries are
decided by the number's region, not its dialling code (+1 809 is the Dominican Republic, not the
USA). Only fixed lines and mobiles are callable: premium rate, shared cost, UAN, voicemail,
pager, personal (UK 070 "follow-me" ranges, a classic fraud vector) and unknown types are not.

Block lists hold known fraud ranges. A platform allow-prefix overrides a platform block; a tenant
allow-prefix overrides only the tenant's own blocks, so no tenant can undo a platform block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from phonenumbers import PhoneNumberType

from callnow.domain.phone import VisitorNumber, classify_e164
from callnow.i18n import N_

CALLABLE_TYPES = frozenset(
    {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


class Refusal(StrEnum):
    INVALID = "invalid_number"
    COUNTRY = "country_not_allowed"
    NUMBER_TYPE = "number_type_not_allowed"
    PLATFORM_BLOCK = "platform_blocked_prefix"
    TENANT_BLOCK = "tenant_blocked_prefix"


# What a visitor is told: the same plain sentence whatever the reason, so a fraudster probing
# ranges learns nothing about the lists.
VISITOR_MESSAGE = N_("Sorry, this number cannot be called back from this page.")


@dataclass(frozen=True, slots=True)
class PrefixList:
    blocked: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

    def blocks(self, digits: str) -> bool:
        return _matches(self.blocked, digits) and not _matches(self.allowed, digits)


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    allowed_regions: frozenset[str]
    platform: PrefixList = field(default_factory=PrefixList)
    tenant: PrefixList = field(default_factory=PrefixList)


def _matches(prefixes: Iterable[str], digits: str) -> bool:
    return any(digits.startswith(prefix) for prefix in prefixes)


def check_destination(e164: str, policy: DestinationPolicy) -> Refusal | None:
    """None when the number may be called; otherwise why not."""
    if not e164.startswith("+") or not e164[1:].isdigit() or not 3 <= len(e164) <= 17:
        return Refusal.INVALID
    classified = classify_e164(e164)
    if classified is None or classified[1] == PhoneNumberType.UNKNOWN:  # UNKNOWN: not valid
        return Refusal.INVALID
    return _check(e164[1:], *classified, policy)


def check_visitor_number(number: VisitorNumber, policy: DestinationPolicy) -> Refusal | None:
    """`check_destination` for a number `parse_visitor_number` already classified (as valid):
    the same answer without classifying it again."""
    e164 = number.e164
    if not e164.startswith("+") or not e164[1:].isdigit() or not 3 <= len(e164) <= 17:
        return Refusal.INVALID
    return _check(e164[1:], number.region, number.number_type, policy)


def _check(
    digits: str, region: str | None, number_type: int, policy: DestinationPolicy
) -> Refusal | None:
    if policy.platform.blocks(digits):
        return Refusal.PLATFORM_BLOCK
    if policy.tenant.blocks(digits):
        return Refusal.TENANT_BLOCK
    if region not in policy.allowed_regions:
        return Refusal.COUNTRY
    if number_type not in CALLABLE_TYPES:
        return Refusal.NUMBER_TYPE
    return None


def normalise_prefix_list(values: Iterable[str]) -> tuple[str, ...]:
    """Prefixes as E.164 digits without '+'; refuse anything else with a reason."""
    out = []
    for raw in values:
        value = raw.strip().removeprefix("+").replace(" ", "")
        if not value.isdigit() or not 1 <= len(value) <= 15:
            raise ValueError(f"'{raw}' is not a number prefix (digits, optionally after +)")
        out.append(value)
    return tuple(sorted(set(out)))
