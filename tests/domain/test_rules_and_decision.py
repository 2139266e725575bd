from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callnow.domain.availability import Window
from callnow.domain.decision import Decision, Outcome, OwnerPreferences, RejectReason, decide
from callnow.domain.phone import parse_visitor_number
from callnow.domain.rules import InvalidRule, NameMatch, NumberMatch, Rule, RuleAction

SYDNEY = ZoneInfo("Australia/Sydney")
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=SYDNEY)
SATURDAY_10AM = datetime(2026, 11, 28, 10, 0, tzinfo=SYDNEY)
MARY = parse_visitor_number("0290375678", "AU")
MOBILE = parse_visitor_number("0412345678", "AU")
LONDON = parse_visitor_number("+44 20 7946 0958", "AU")


def prefs(**changes) -> OwnerPreferences:
    values = dict(
        enabled=True,
        do_not_allow=False,
        confirmation_required=True,
        windows=[Window.parse(d, "09:00", "17:00") for d in range(5)],
        timezone=SYDNEY,
        rules=[],
    )
    values.update(changes)
    return OwnerPreferences(**values)


def test_by_default_the_owner_confirms_each_request():
    assert decide(prefs(), MARY, "Mary", MONDAY_10AM) == Decision(Outcome.CONFIRM, "default")


def test_without_confirmation_the_request_is_accepted():
    decision = decide(prefs(confirmation_required=False), MARY, None, MONDAY_10AM)
    assert decision.outcome is Outcome.ACCEPT


def test_a_disabled_profile_rejects():
    assert decide(prefs(enabled=False), MARY, None, MONDAY_10AM).reason == RejectReason.DISABLED


def test_do_not_allow_rejects_even_inside_hours():
    decision = decide(prefs(do_not_allow=True), MARY, None, MONDAY_10AM)
    assert decision == Decision(Outcome.REJECT, RejectReason.NOT_ACCEPTING)


def test_outside_hours_rejects():
    decision = decide(prefs(), MARY, None, SATURDAY_10AM)
    assert decision == Decision(Outcome.REJECT, RejectReason.OUTSIDE_HOURS)


def test_the_first_matching_rule_decides_in_the_owner_order():
    rules = [
        Rule(RuleAction.ACCEPT, number_match=NumberMatch.EXACT, number_value="61290375678"),
        Rule(RuleAction.REJECT, number_match=NumberMatch.PREFIX, number_value="612"),
    ]
    assert decide(prefs(rules=rules), MARY, None, MONDAY_10AM) == Decision(Outcome.ACCEPT, "rule 1")
    assert decide(prefs(rules=rules[::-1]), MARY, None, MONDAY_10AM) == Decision(
        Outcome.REJECT, RejectReason.RULE
    )


def test_a_reject_rule_wins_outside_hours_so_the_caller_learns_nothing_about_hours():
    rules = [Rule(RuleAction.REJECT, number_match=NumberMatch.PREFIX, number_value="614")]
    assert decide(prefs(rules=rules), MOBILE, None, SATURDAY_10AM).reason == RejectReason.RULE


def test_an_accept_rule_does_not_override_the_owner_hours():
    rules = [Rule(RuleAction.ACCEPT, number_match=NumberMatch.PREFIX, number_value="61")]
    decision = decide(prefs(rules=rules), MARY, None, SATURDAY_10AM)
    assert decision.reason == RejectReason.OUTSIDE_HOURS


def test_a_confirm_rule_asks_the_owner_even_when_confirmation_is_off():
    rules = [Rule(RuleAction.CONFIRM, number_match=NumberMatch.SCOPE, number_value="international")]
    p = prefs(confirmation_required=False, rules=rules)
    assert decide(p, LONDON, None, MONDAY_10AM).outcome is Outcome.CONFIRM
    assert decide(p, MARY, None, MONDAY_10AM).outcome is Outcome.ACCEPT


def test_name_rules_compare_case_insensitively():
    contains = Rule(RuleAction.REJECT, name_match=NameMatch.CONTAINS, name_value="spam")
    exact = Rule(RuleAction.ACCEPT, name_match=NameMatch.EXACT, name_value="Mum")
    assert contains.matches(MARY, "Totally SPAM Ltd")
    assert not contains.matches(MARY, None)
    assert exact.matches(MARY, "mum")
    assert not exact.matches(MARY, "Mummy")


def test_a_rule_with_number_and_name_needs_both():
    rule = Rule(
        RuleAction.ACCEPT,
        number_match=NumberMatch.PREFIX,
        number_value="614",
        name_match=NameMatch.EXACT,
        name_value="Mum",
    )
    assert rule.matches(MOBILE, "Mum")
    assert not rule.matches(MARY, "Mum")
    assert not rule.matches(MOBILE, "Dad")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"number_match": NumberMatch.PREFIX, "number_value": "04x"},
        {"number_match": NumberMatch.SCOPE, "number_value": "mars"},
        {"name_match": NameMatch.CONTAINS, "name_value": "  "},
        {"name_match": NameMatch.CONTAINS, "name_value": "x" * 61},
    ],
)
def test_malformed_rules_are_refused(kwargs):
    with pytest.raises(InvalidRule):
        Rule(RuleAction.REJECT, **kwargs)


def test_rules_describe_themselves_for_the_portal():
    rule = Rule(RuleAction.REJECT, number_match=NumberMatch.PREFIX, number_value="614")
    assert rule.describe() == "Reject when number starts with +614"


def test_an_owner_who_confirms_on_the_web_gets_requests_held_for_the_portal():
    p = prefs(confirm_on_web=True)
    assert decide(p, MARY, "Mary", MONDAY_10AM).outcome is Outcome.CONFIRM_ON_WEB
    accept_mum = [Rule(RuleAction.ACCEPT, name_match=NameMatch.EXACT, name_value="Mum")]
    assert (
        decide(prefs(confirm_on_web=True, rules=accept_mum), MARY, "Mum", MONDAY_10AM).outcome
        is Outcome.ACCEPT
    )


def test_a_number_the_owner_just_declined_is_rejected_even_by_an_accept_rule():
    accept_all = [Rule(RuleAction.ACCEPT, number_match=NumberMatch.PREFIX, number_value="61")]
    decision = decide(prefs(rules=accept_all), MARY, "Mary", MONDAY_10AM, recently_declined=True)
    assert decision == Decision(Outcome.REJECT, RejectReason.DECLINED_RECENTLY)
    # Other refusals keep their own reason: the caller learns nothing about the decline.
    assert decide(prefs(), MARY, None, SATURDAY_10AM, recently_declined=True).reason == (
        RejectReason.OUTSIDE_HOURS
    )
