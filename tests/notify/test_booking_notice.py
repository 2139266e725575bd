"""A new booking mails its owner when it will be dialled: the slot on the page's clock with the
zone's name, in the owner's language, through a real SMTP server process (aiosmtpd)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callnow.domain.notices import Kind
from callnow.domain.request_state import RequestState
from callnow.i18n import formats
from callnow.store import accounts, profiles
from callnow.store import mail as mail_store
from callnow.store import requests as request_store
from callnow.store.db import transaction
from callnow.store.models import User
from tests.notify.test_mail_outbox import alice_id, mail_settings, outbox, send_pass
from tests.support.smtp import text_of
from tests.web.helpers import set_profile
from tests.web.test_booking import ALL_WEEK, book, next_grid_slot

# A zone without summer time: its name is the same whatever day the test runs.
TOKYO = ZoneInfo("Asia/Tokyo")


def booked_at_ten(world) -> datetime:
    """A booking from the booking page for 10:00 tomorrow, Tokyo time."""
    set_profile(world, "alice", windows=ALL_WEEK, timezone=TOKYO.key)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=10, tz=TOKYO)
    answer = book(world, slot.strftime("%Y-%m-%dT%H:%MZ"), name="Mary")
    assert answer.status_code == 303, answer.text
    return slot


def speak(world, language: str) -> None:
    with world.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        user.language = language


def test_a_new_booking_mails_the_owner_when_it_will_be_dialled(world, smtp_server):
    slot = booked_at_ten(world)
    [row] = outbox(world)
    assert row.kind == Kind.BOOKING.value
    assert row.details["timezone"] == "Asia/Tokyo"
    assert datetime.fromisoformat(row.details["scheduled_for"]) == slot

    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    when = formats.date_time(slot, TOKYO, "en")
    assert "10:00\u202fAM" in when or "10:00 AM" in when  # CLDR's narrow space, or a plain one
    assert message["Subject"] == f"Mary (+61290375678) booked a call for {when}"
    body = text_of(message)
    assert "Mary (+61290375678) asked on your page alice to be called back." in body
    assert f"They booked a call for {when} (Japan Standard Time)." in body
    assert "At that time CallNow rings your extension first, then calls them." in body


def test_the_booking_mail_speaks_the_owners_language_and_clock(world, smtp_server):
    speak(world, "de")
    slot = booked_at_ten(world)
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    when = formats.date_time(slot, TOKYO, "de")
    assert when.endswith("10:00")  # the 24-hour clock of German, on Tokyo's wall clock
    assert message["Subject"] == f"Mary (+61290375678) hat einen Anruf für {when} gebucht"
    body = text_of(message)
    assert f"{when} (Japanische Normalzeit)" in body
    assert "booked" not in body and "Japan Standard Time" not in body


def test_a_booking_through_the_call_api_mails_the_owner_too(world, smtp_server):
    set_profile(world, "alice", windows=ALL_WEEK, timezone=TOKYO.key)
    slot = next_grid_slot(datetime.now(UTC), days=2, hour=9, tz=TOKYO)
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        key = {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}
    answer = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=key,
        json={"name": "Sam", "number": "0290375679", "scheduled_for": slot.isoformat()},
    )
    assert answer.status_code == 201, answer.text
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"].endswith(f"booked a call for {formats.date_time(slot, TOKYO, 'en')}")


def test_a_booking_refused_at_once_tells_the_time_it_asked_for(world, smtp_server):
    set_profile(world, "alice", windows=ALL_WEEK, timezone=TOKYO.key)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=11, tz=TOKYO)
    with transaction(world.sessions) as session:
        request_store.record_new(
            session,
            profile=profiles.by_callnow_id(session, "alice"),
            caller_name="Mary",
            number_typed="0290375678",
            number_e164="+61290375678",
            source_address="192.0.2.1",
            user_agent="test",
            channel="web",
            decision="reject",
            reason="rule",
            final_state=RequestState.REJECTED,
            now=datetime.now(UTC),
            scheduled_for=slot,
        )
    assert [r.kind for r in outbox(world)] == ["declined"]
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Callback request from Mary (+61290375678) was declined"
    body = text_of(message)
    when = formats.date_time(slot, TOKYO, "en")
    assert f"They asked for a call at {when} (Japan Standard Time)." in body
    assert "It was declined: one of your rules rejected it" in body
    assert "rings your extension" not in body


def test_an_owner_who_did_not_choose_booking_notices_gets_none(world):
    with transaction(world.sessions) as session:
        mail_store.set_prefs(session, alice_id(world), paused=False, kinds={Kind.MISSED})
    booked_at_ten(world)
    assert outbox(world) == []
