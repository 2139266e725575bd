"""Pages kept between visits: every change the page reads renews its revision, whoever writes it,
and the next visit sees it. On SQLite and PostgreSQL (their triggers differ)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm.exc import DetachedInstanceError

from callnow.domain.availability import Window
from callnow.domain.rules import NameMatch, Rule, RuleAction
from callnow.store import profiles, queue
from callnow.store.db import SharedObjectError, transaction
from callnow.store.held_pages import HeldPages
from callnow.store.models import (
    AvailabilityWindow,
    CallRequest,
    Extension,
    Profile,
    RuleRow,
    Tenant,
    User,
)
from tests.support.statements import statements_sent
from tests.support.world import queued_request


def revision_of(world, callnow_id: str = "alice") -> int:
    with world.sessions() as session:
        return session.scalar(select(Profile.revision).where(Profile.callnow_id == callnow_id))


def run_sql(world, sql: str, **params) -> None:
    with transaction(world.sessions) as session:
        session.execute(text(sql), params)


def alice_ids(world) -> dict[str, int]:
    with world.sessions() as session:
        alice = profiles.by_callnow_id(session, "alice")
        return {
            "profile": alice.id,
            "extension": alice.extension_id,
            "tenant": alice.extension.tenant_id,
            "owner": alice.extension.owner_user_id,
        }


RULE = Rule(RuleAction.REJECT, name_match=NameMatch.CONTAINS, name_value="x")


def give_alice_hours_and_a_rule(world) -> None:
    with transaction(world.sessions) as session:
        alice = profiles.by_callnow_id(session, "alice")
        profiles.replace_windows(session, alice, [Window(0, 540, 1020)])
        profiles.replace_rules(session, alice, [RULE])


def what_a_visit_reads(page: Profile) -> tuple[object, ...]:
    """The page's tenant, owner, hours and rules, as values two visits can compare."""
    return (
        page.extension.tenant.name,
        page.extension.owner.email,
        tuple(profiles.windows_of(page)),
        tuple(profiles.rules_of(page)),
    )


def columns(model) -> list[str]:
    return [column.name for column in inspect(model).columns]


# Every column, this one's and any a later migration adds: a column the page may read
# renews the revision unless it is named here with the reason.
QUIET_COLUMNS = {("extensions", "busy_until")}  # the engine's busy hold; the page never reads it


@pytest.mark.parametrize(
    ("model", "owner_key"),
    [(Profile, "profile"), (Extension, "extension"), (Tenant, "tenant"), (User, "owner")],
)
def test_an_update_of_any_column_the_page_reads_renews_its_revision(world, model, owner_key):
    ids = alice_ids(world)
    table = model.__tablename__
    for column in columns(model):
        if (table, column) in QUIET_COLUMNS:
            continue
        before = revision_of(world)
        run_sql(world, f"UPDATE {table} SET {column} = {column} WHERE id = :id", id=ids[owner_key])
        assert revision_of(world) != before, f"{table}.{column}"


def test_an_insert_update_or_delete_of_its_hours_or_rules_renews_its_revision(world):
    give_alice_hours_and_a_rule(world)
    profile_id = alice_ids(world)["profile"]
    for table, insert in (
        (
            "availability_windows",
            "INSERT INTO availability_windows (profile_id, weekday, start_minute, end_minute)"
            " VALUES (:id, 3, 600, 700)",
        ),
        (
            "rules",
            "INSERT INTO rules (profile_id, position, action, name_match, name_value)"
            " VALUES (:id, 9, 'reject', 'contains', 'y')",
        ),
    ):
        for sql in (
            insert,
            f"UPDATE {table} SET profile_id = profile_id WHERE profile_id = :id",
            f"DELETE FROM {table} WHERE profile_id = :id",
        ):
            before = revision_of(world)
            run_sql(world, sql, id=profile_id)
            assert revision_of(world) != before, sql


def test_the_engines_busy_hold_leaves_the_revision_alone(world):
    with transaction(world.sessions) as session:
        request_id = queued_request(session, "alice", "+61290375678").id
    before = revision_of(world)
    with transaction(world.sessions) as session:
        queue.mark_owner_busy(session, request_id, datetime.now(UTC) + timedelta(minutes=5))
    with world.sessions() as session:
        held = session.scalar(
            select(Extension.busy_until).join(Profile).where(Profile.callnow_id == "alice")
        )
    assert held is not None
    assert revision_of(world) == before


def test_an_update_that_also_sets_the_busy_hold_renews_the_revision(world):
    before = revision_of(world)
    run_sql(
        world,
        "UPDATE extensions SET display_name = 'Alice at home', busy_until = :until WHERE id = :id",
        until=datetime.now(UTC) + timedelta(minutes=5),
        id=alice_ids(world)["extension"],
    )
    assert revision_of(world) != before


def test_a_kept_page_never_answers_with_a_stale_busy_hold(world):
    with transaction(world.sessions) as session:
        request_id = queued_request(session, "alice", "+61290375678").id
    pages = HeldPages()
    with world.sessions() as session:
        pages.by_callnow_id(session, "alice")
    until = datetime.now(UTC) + timedelta(minutes=5)
    with transaction(world.sessions) as session:
        queue.mark_owner_busy(session, request_id, until)
    with world.sessions() as session, statements_sent(session.get_bind()) as sent:
        page = pages.by_callnow_id(session, "alice")
        assert len(sent) == 1  # still the kept copy: the hold does not renew the revision
        # The copy does not keep the hold, so reading it there fails loudly, never stale.
        with pytest.raises(DetachedInstanceError):
            _ = page.extension.busy_until
        assert session.get(Extension, page.extension.id).busy_until == until


def test_another_page_keeps_its_revision(world):
    bob = revision_of(world, "bob")
    run_sql(world, "UPDATE profiles SET enabled = enabled WHERE callnow_id = 'alice'")
    give_alice_hours_and_a_rule(world)
    assert revision_of(world, "bob") == bob


def test_a_new_page_does_not_start_at_a_revision_an_old_one_had(world):
    assert revision_of(world, "alice") != revision_of(world, "bob")
    assert 0 not in (revision_of(world, "alice"), revision_of(world, "bob"))


def test_an_unchanged_page_is_served_again_with_one_statement(world):
    give_alice_hours_and_a_rule(world)
    pages = HeldPages()
    with world.sessions() as session:
        expected = what_a_visit_reads(pages.by_callnow_id(session, "alice"))
    with world.sessions() as session, statements_sent(session.get_bind()) as sent:
        again = pages.by_callnow_id(session, " Alice ")
        seen = what_a_visit_reads(again)
        assert again not in session  # the kept copy itself, in no session
    assert seen == expected
    assert len(sent) == 1


def test_a_change_made_in_plain_sql_is_seen_by_the_next_visit(world):
    pages = HeldPages()
    with world.sessions() as session:
        assert pages.by_callnow_id(session, "alice").do_not_allow is False
        assert profiles.windows_of(pages.by_callnow_id(session, "alice")) == []
    run_sql(world, "UPDATE profiles SET do_not_allow = :yes WHERE callnow_id = 'alice'", yes=True)
    give_alice_hours_and_a_rule(world)
    run_sql(world, "UPDATE tenants SET region = 'NZ' WHERE name = 'Alice Pty'")
    with world.sessions() as session:
        page = pages.by_callnow_id(session, "alice")
        assert page.do_not_allow is True
        assert profiles.windows_of(page) == [Window(0, 540, 1020)]
        assert page.extension.tenant.region == "NZ"


def test_a_kept_page_refuses_changes_and_sessions_and_merges_into_a_copy(world):
    give_alice_hours_and_a_rule(world)
    pages = HeldPages()
    with world.sessions() as session:
        page = pages.by_callnow_id(session, "alice")
        refused = [
            lambda: setattr(page, "welcome_message", "not kept"),
            lambda: setattr(page.extension.tenant, "region", "NZ"),
            lambda: setattr(page.extension.owner, "language", "de"),
            lambda: setattr(page.windows[0], "end_minute", 60),
            lambda: page.windows.append(AvailabilityWindow(weekday=1, start_minute=0)),
            lambda: page.rules.remove(page.rules[0]),
            lambda: session.add(page),
            lambda: session.add(page.extension.owner),
            # A new row linked to the kept page would take it into the session by cascade.
            lambda: session.add(CallRequest(profile=page, token="t", number_e164="+61290375678")),
        ]
        for change in refused:
            with pytest.raises(SharedObjectError):
                change()
            session.rollback()
        # A page to change is a copy of its own.
        mine = session.merge(page, load=False)
        mine.welcome_message = "mine"
        assert mine in session and page not in session
    with world.sessions() as session:
        page = pages.by_callnow_id(session, "alice")
        assert (page.welcome_message, page.extension.tenant.region) == ("", "AU")
        assert what_a_visit_reads(page)[2:] == ((Window(0, 540, 1020),), (RULE,))


def test_a_deleted_or_renamed_page_is_gone_and_the_oldest_kept_page_makes_room(world):
    pages = HeldPages(size=1)
    with world.sessions() as session:
        pages.by_callnow_id(session, "alice")
        pages.by_callnow_id(session, "bob")
    assert len(pages) == 1
    run_sql(world, "UPDATE profiles SET callnow_id = 'alice2' WHERE callnow_id = 'alice'")
    with world.sessions() as session:
        assert pages.by_callnow_id(session, "alice") is None
        assert pages.by_callnow_id(session, "alice2").callnow_id == "alice2"
    with transaction(world.sessions) as session:
        session.execute(text("DELETE FROM rules"))
        session.delete(session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one())
    with world.sessions() as session:
        assert pages.by_callnow_id(session, "bob") is None


def test_a_rule_changed_through_the_orm_is_seen(world):
    pages = HeldPages()
    with world.sessions() as session:
        assert profiles.rules_of(pages.by_callnow_id(session, "alice")) == []
    with transaction(world.sessions) as session:
        alice = profiles.by_callnow_id(session, "alice")
        alice.rules.append(RuleRow(position=1, action="reject", name_match="exact", name_value="z"))
    with world.sessions() as session:
        assert [r.name_value for r in pages.by_callnow_id(session, "alice").rules] == ["z"]


def test_threads_visiting_one_kept_page_all_read_the_same_copy(world):
    give_alice_hours_and_a_rule(world)
    pages = HeldPages()
    with world.sessions() as session:
        pages.by_callnow_id(session, "alice")  # kept from here on

    def visit(_: int) -> tuple[object, ...]:
        with world.sessions() as session:
            page = pages.by_callnow_id(session, "alice")
            assert page not in session  # the kept copy, in no session
            return (id(page), *what_a_visit_reads(page))

    with ThreadPoolExecutor(max_workers=8) as threads:
        seen = set(threads.map(visit, range(400)))
    assert {visit[1:] for visit in seen} == {
        ("Alice Pty", "alice@example.com", (Window(0, 540, 1020),), (RULE,))
    }
    assert len({visit[0] for visit in seen}) == 1
