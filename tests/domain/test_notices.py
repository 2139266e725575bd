"""Which notices an owner gets, and when a burst of them becomes one digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.notices import (
    CHOOSABLE,
    DigestRule,
    Kind,
    Plan,
    format_kinds,
    parse_kinds,
    plan,
    wanted,
)

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
RULE = DigestRule(burst=5, window=timedelta(minutes=10), gap=timedelta(minutes=2))


def test_kinds_round_trip_and_unknown_words_are_ignored():
    assert parse_kinds(format_kinds(set(CHOOSABLE))) == frozenset(CHOOSABLE)
    assert parse_kinds("missed,bogus,,password_reset") == {Kind.MISSED}


def test_pausing_stops_every_choosable_kind_but_never_a_password_reset():
    chosen = frozenset(CHOOSABLE)
    assert all(wanted(k, paused=False, chosen=chosen) for k in CHOOSABLE)
    assert not any(wanted(k, paused=True, chosen=chosen) for k in CHOOSABLE)
    assert wanted(Kind.PASSWORD_RESET, paused=True, chosen=frozenset())
    assert not wanted(Kind.BUDGET, paused=False, chosen=frozenset({Kind.MISSED}))


def test_a_quiet_owner_gets_each_mail_on_its_own():
    assert plan(RULE, sent_in_window=0, due=1, last_sent_at=None, now=NOW) is Plan.EACH
    assert plan(RULE, sent_in_window=3, due=2, last_sent_at=NOW, now=NOW) is Plan.EACH


def test_beyond_the_burst_what_is_due_goes_out_as_one_digest_at_most_once_per_gap():
    assert plan(RULE, sent_in_window=0, due=50, last_sent_at=None, now=NOW) is Plan.DIGEST
    just_now = NOW - timedelta(seconds=30)
    assert plan(RULE, sent_in_window=5, due=1, last_sent_at=just_now, now=NOW) is Plan.HOLD
    later = NOW - timedelta(minutes=2)
    assert plan(RULE, sent_in_window=5, due=1, last_sent_at=later, now=NOW) is Plan.DIGEST


def test_nothing_due_is_nothing_to_send():
    assert plan(RULE, sent_in_window=0, due=0, last_sent_at=None, now=NOW) is Plan.HOLD


def test_a_rule_that_allows_nothing_is_refused():
    with pytest.raises(ValueError):
        DigestRule(burst=0)
