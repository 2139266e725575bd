"""Loading a profile with its owner, hours and rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from callnow.domain.availability import Window
from callnow.domain.rules import NameMatch, NumberMatch, Rule, RuleAction
from callnow.store import profiles
from callnow.store.db import transaction
from tests.support.statements import statements_sent

HOURS = [Window(4, 540, 1020), Window(0, 540, 1020), Window(2, 600, 720)]
RULES = [
    Rule(RuleAction.REJECT, name_match=NameMatch.CONTAINS, name_value="spam"),
    Rule(RuleAction.ACCEPT, number_match=NumberMatch.EXACT, number_value="61290375678"),
]


def give_alice_hours_and_rules(world) -> None:
    with transaction(world.sessions) as session:
        alice = profiles.by_callnow_id(session, "alice")
        profiles.replace_windows(session, alice, HOURS)
        profiles.replace_rules(session, alice, RULES)


def test_a_profile_comes_with_its_owner_hours_and_rules_in_order(world) -> None:
    give_alice_hours_and_rules(world)

    with world.sessions() as session:
        alice = profiles.by_callnow_id(session, " Alice ")
        with statements_sent(session.get_bind()) as sent:
            loaded = (
                alice.extension.tenant.name,
                alice.extension.owner.email,
                profiles.windows_of(alice),
                profiles.rules_of(alice),
            )

    assert loaded == (
        "Alice Pty",
        "alice@example.com",
        sorted(HOURS, key=lambda window: window.weekday),
        RULES,
    )
    assert sent == []  # everything came with the profile


def test_hours_changed_in_the_session_are_kept_when_the_profile_is_loaded_again(world) -> None:
    give_alice_hours_and_rules(world)

    with world.sessions() as session, session.no_autoflush:
        alice = profiles.by_callnow_id(session, "alice")
        alice.windows.pop()  # changed, and not flushed by the next query
        again = profiles.by_id(session, alice.id)

        assert again is alice
        assert len(profiles.windows_of(again)) == len(HOURS) - 1


def test_an_unknown_callnow_id_is_none(world) -> None:
    with world.sessions() as session:
        assert profiles.by_callnow_id(session, "nobody") is None
