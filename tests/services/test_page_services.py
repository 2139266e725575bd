"""The services behind the public page and the owner's settings, called as the routes call them."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, update

from callnow.config import AbuseSettings
from callnow.domain.destination_policy import PrefixList
from callnow.domain.page import MAX_RULES, MAX_WINDOWS
from callnow.domain.rules import InvalidRule
from callnow.services import page_settings, public_page
from callnow.services.captcha import CaptchaBook
from callnow.services.intake import Safeguards, Submission
from callnow.services.throttle import Throttle
from callnow.store import accounts, profiles
from callnow.store.db import after_commit
from callnow.store.models import CallRequest, Extension

# A Monday, 10:00 in Sydney.
NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)


def safeguards() -> Safeguards:
    return Safeguards(
        throttle=Throttle(AbuseSettings()),
        platform_prefixes=PrefixList(),
        captcha=CaptchaBook("test-secret", 300),
    )


def ask(session, profile, guard, captcha=None):
    submission = Submission("Mary", "02 9037 5678", "198.51.100.7", "test", "web")
    return public_page.ask_for_callback(session, profile, submission, NOW, guard, captcha)


def owner_of(session):
    return accounts.by_email(session, "alice@example.com")


def test_the_pipeline_places_a_request_when_every_safeguard_passes(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        outcome = ask(session, profile, safeguards())
        assert outcome.refusal is None
        assert outcome.request is not None and outcome.request.state == "queued"


def test_outside_the_owner_hours_nothing_is_stored_for_the_form_and_the_link_alike(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        closed = page_settings.PageChanges(
            windows=[page_settings.WindowFields(5, "09:00", "10:00")]
        )
        page_settings.change_page(
            session, profile, closed, actor=owner_of(session), via="test", details={}
        )
        outcome = ask(session, profile, safeguards())
        assert (outcome.refusal, outcome.request) == (public_page.Refusal.CLOSED, None)


def test_a_page_asking_for_a_captcha_refuses_a_missing_or_wrong_answer(world):
    guard = safeguards()
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        profile.image_validation = True
        assert not public_page.one_step_possible(session, profile, guard, NOW, "GET", {})
        assert ask(session, profile, guard).refusal is public_page.Refusal.CAPTCHA_WRONG
        token = guard.captcha.issue(profile.id, NOW)
        wrong = public_page.CaptchaAnswer(token, "000000")
        assert ask(session, profile, guard, wrong).refusal is public_page.Refusal.CAPTCHA_WRONG


def test_an_invalid_save_changes_nothing_and_names_every_wrong_field(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        before = (profile.callnow_id, profile.welcome_message, len(profile.windows))
        changes = page_settings.PageChanges(
            callnow_id="x",
            welcome_message="w" * 501,
            timezone="Mars/Olympus",
            windows=[page_settings.WindowFields(0, "09:00", "10:00")] * (MAX_WINDOWS + 1),
            switches={"enabled": False},
        )
        with pytest.raises(page_settings.InvalidChanges) as raised:
            page_settings.change_page(
                session, profile, changes, actor=owner_of(session), via="test", details={}
            )
        assert set(raised.value.errors) == {"callnow_id", "welcome_message", "timezone", "windows"}
        assert not raised.value.taken
        assert (profile.callnow_id, profile.welcome_message, len(profile.windows)) == before
        assert profile.enabled


def test_an_id_of_another_page_is_a_conflict(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        with pytest.raises(page_settings.InvalidChanges) as raised:
            page_settings.change_page(
                session,
                profile,
                page_settings.PageChanges(callnow_id="Bob"),
                actor=owner_of(session),
                via="test",
                details={},
            )
        assert raised.value.taken


def test_rules_beyond_the_limit_are_refused_whole(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        before = profiles.rules_of(profile)
        rule = page_settings.parse_rule(
            profile, page_settings.RuleFields("reject", "prefix", "+6114")
        )
        with pytest.raises(InvalidRule):
            page_settings.set_rules(
                session,
                profile,
                [rule] * (MAX_RULES + 1),
                actor=owner_of(session),
                via="test",
                action="t",
            )
        assert profiles.rules_of(profile) == before


def test_a_placed_request_is_logged_with_its_reference(world, caplog):
    caplog.set_level("INFO")
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        outcome = ask(session, profile, safeguards())
        ref = f"req-{outcome.request.id}"
    received = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert {"event": "request_received", "channel": "web", "request_ref": ref}.items() <= next(
        m for m in received if m.get("event") == "request_received"
    ).items()


def test_a_request_is_logged_as_received_only_once_it_is_committed(world, caplog):
    caplog.set_level("INFO")

    def received() -> list[dict]:
        return [
            r.msg
            for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") == "request_received"
        ]

    with world.sessions() as session:
        with session.begin():
            profile = profiles.by_callnow_id(session, "alice")
            ask(session, profile, safeguards())
            assert received() == []  # not yet: the transaction could still fail
            session.rollback()
        assert received() == []  # rolled back: nothing was received
    with world.sessions() as session:
        session.begin()
        ask(session, profiles.by_callnow_id(session, "alice"), safeguards())
        session.close()  # ended without a commit: nothing was received
        with session.begin():
            pass
    assert received() == []
    with world.sessions() as session:
        with session.begin():
            profile = profiles.by_callnow_id(session, "alice")
            outcome = ask(session, profile, safeguards())
        assert [m["request_ref"] for m in received()] == [f"req-{outcome.request.id}"]


def test_an_action_after_a_commit_that_fails_does_not_fail_the_commit(world, caplog):
    def broken() -> None:
        raise RuntimeError("a broken log handler")

    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        outcome = ask(session, profile, safeguards())
        after_commit(session, broken)
    assert "an action after a commit failed" in caplog.text
    with world.sessions() as session:
        assert session.get(CallRequest, outcome.request.id) is not None


def test_a_page_edit_and_an_edit_of_its_extension_at_once_both_land(world):
    """An edit of the extension locks its row, then (through the revision trigger) the page's.
    A page edit that also changes the shown name (the extension's) must lock them in that
    order too, whatever else it changes first (a new CallNow ID writes the page's row at once):
    locked the other way round, PostgreSQL ends the pair as a deadlock and fails one edit."""
    engine = world.sessions.kw["bind"]
    page_editor: list[threading.Thread] = []
    paused = threading.Event()

    def pause_after_the_page_row(_conn, _cursor, statement, *_args):
        first = not paused.is_set() and statement.startswith("UPDATE profiles")
        if first and threading.current_thread() in page_editor:
            paused.set()
            time.sleep(0.5)  # the extension's edit starts now and waits for a row

    def edit_page():
        with world.sessions() as session, session.begin():
            profile = profiles.by_callnow_id(session, "alice")
            changes = page_settings.PageChanges(
                switches={"show_name": False},
                display_name="Alice at the front desk",
                callnow_id="alice_front",
                windows=[page_settings.WindowFields(0, "09:00", "17:00")],
                welcome_message="Hello",
            )
            page_settings.change_page(
                session, profile, changes, actor=owner_of(session), via="test", details={}
            )

    def edit_extension():
        assert paused.wait(10)
        with world.sessions() as session, session.begin():
            extension = profiles.by_callnow_id(session, "alice").extension
            session.execute(
                update(Extension)
                .where(Extension.id == extension.id)
                .values(external_number="+61290375999")
            )

    event.listen(engine, "after_cursor_execute", pause_after_the_page_row)
    try:
        with ThreadPoolExecutor(2) as pool:
            editing = pool.submit(
                lambda: (page_editor.append(threading.current_thread()), edit_page())
            )
            extending = pool.submit(edit_extension)
            editing.result(timeout=30)
            extending.result(timeout=30)
    finally:
        event.remove(engine, "after_cursor_execute", pause_after_the_page_row)
    assert paused.is_set()
    with world.sessions() as session:
        profile = profiles.by_callnow_id(session, "alice_front")
        assert (profile.show_name, profile.extension.display_name) == (
            False,
            "Alice at the front desk",
        )
        assert profile.extension.external_number == "+61290375999"
