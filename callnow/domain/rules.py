"""Owner rules: accept, confirm or reject a request by the caller's number and/or name.

Rules are tried in the owner's order; the first whose every condition matches decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from callnow.domain.phone import InvalidNumber, NumberScope, VisitorNumber, e164_prefix
from callnow.i18n import N_, ngettext
from callnow.i18n import gettext as _
from callnow.i18n.formats import list_of


class RuleAction(StrEnum):
    ACCEPT = "accept"  # call back without asking the owner
    CONFIRM = "confirm"  # ask the owner first
    REJECT = "reject"


class NumberMatch(StrEnum):
    EXACT = "exact"  # value is E.164 digits
    PREFIX = "prefix"  # value is E.164 digits without +
    SCOPE = "scope"  # value is "national" or "international"


class NameMatch(StrEnum):
    CONTAINS = "contains"
    EXACT = "exact"


class InvalidRule(ValueError):
    """A rule that cannot be used; the message says why."""


MAX_NAME_PATTERN = 60


@dataclass(frozen=True, slots=True)
class Rule:
    action: RuleAction
    number_match: NumberMatch | None = None
    number_value: str | None = None
    name_match: NameMatch | None = None
    name_value: str | None = None

    def __post_init__(self) -> None:
        if self.number_match is None and self.name_match is None:
            raise InvalidRule(_("A rule needs a number or a name condition."))
        if self.number_match is not None:
            value = self.number_value or ""
            if self.number_match is NumberMatch.SCOPE:
                if value not in (NumberScope.NATIONAL, NumberScope.INTERNATIONAL):
                    raise InvalidRule(_("A number class is 'national' or 'international'."))
            elif not (value.isdigit() and 1 <= len(value) <= 20):
                raise InvalidRule(_("A number condition is 1 to 20 digits."))
        if self.name_match is not None:
            name = (self.name_value or "").strip()
            if not name or len(name) > MAX_NAME_PATTERN:
                raise InvalidRule(
                    ngettext(
                        "A name condition is 1 to %(most)d character.",
                        "A name condition is 1 to %(most)d characters.",
                        MAX_NAME_PATTERN,
                    )
                    % {"most": MAX_NAME_PATTERN}
                )

    def matches(self, number: VisitorNumber, name: str | None) -> bool:
        return self._number_matches(number) and self._name_matches(name)

    def _number_matches(self, number: VisitorNumber) -> bool:
        match self.number_match:
            case None:
                return True
            case NumberMatch.EXACT:
                return number.digits == self.number_value
            case NumberMatch.PREFIX:
                return number.digits.startswith(self.number_value or "")
            case NumberMatch.SCOPE:
                return number.scope == self.number_value
        return False

    def _name_matches(self, name: str | None) -> bool:
        if self.name_match is None:
            return True
        if not name:
            return False
        wanted = (self.name_value or "").strip().casefold()
        given = name.casefold()
        if self.name_match is NameMatch.EXACT:
            return given == wanted
        return wanted in given

    def describe(self) -> str:
        """The rule as one sentence in the language in use: its action, then its conditions
        joined the way the language lists things ("… and …")."""
        conditions = []
        if self.number_match is NumberMatch.EXACT:
            conditions.append(_("number is +%(digits)s") % {"digits": self.number_value})
        elif self.number_match is NumberMatch.PREFIX:
            conditions.append(_("number starts with +%(digits)s") % {"digits": self.number_value})
        elif self.number_match is NumberMatch.SCOPE:
            if self.number_value == NumberScope.NATIONAL:
                conditions.append(_("number is national"))
            else:
                conditions.append(_("number is international"))
        if self.name_match is NameMatch.EXACT:
            conditions.append(_("name is “%(name)s”") % {"name": self.name_value})
        elif self.name_match is NameMatch.CONTAINS:
            conditions.append(_("name contains “%(name)s”") % {"name": self.name_value})
        return _(_DESCRIPTIONS[self.action]) % {"conditions": list_of(conditions)}


# One whole sentence per action; the conditions fill its one slot.
_DESCRIPTIONS = {
    RuleAction.ACCEPT: N_("Accept when %(conditions)s"),
    RuleAction.CONFIRM: N_("Confirm when %(conditions)s"),
    RuleAction.REJECT: N_("Reject when %(conditions)s"),
}


def first_matching(rules: Iterable[Rule], number: VisitorNumber, name: str | None) -> Rule | None:
    return next((rule for rule in rules if rule.matches(number, name)), None)


def _values(kind: type[StrEnum]) -> set[str]:
    return {member.value for member in kind}


def rule_from_fields(
    action: str,
    number_match: str,
    number_value: str,
    name_match: str,
    name_value: str,
    region: str,
) -> Rule:
    """Build a domain rule from loose text fields (portal form or API), or raise InvalidRule."""
    try:
        rule_action = RuleAction(action)
    except ValueError as exc:
        raise InvalidRule(_("The action is accept, confirm or reject.")) from exc
    n_match = NumberMatch(number_match) if number_match in _values(NumberMatch) else None
    value: str | None = None
    if n_match in (NumberMatch.EXACT, NumberMatch.PREFIX):
        try:
            value = e164_prefix(number_value, region)
        except InvalidNumber as exc:
            raise InvalidRule(str(exc)) from exc
    elif n_match is NumberMatch.SCOPE:
        value = number_value.strip().lower()
    m_match = NameMatch(name_match) if name_match in _values(NameMatch) else None
    return Rule(
        rule_action,
        number_match=n_match,
        number_value=value,
        name_match=m_match,
        name_value=name_value.strip() if m_match else None,
    )
