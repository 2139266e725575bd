"""Booking a time: the booking page lists the slots inside the owner's windows, refuses a slot it
may not take with a sentence that says why, counts a booking like a request, and the status page
shows the booked time with a cancel button and honest steps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callnow.domain.availability import Window
from callnow.domain.request_state import RequestState
from callnow.services.scheduling import slot_value
from callnow.store import accounts, profiles
from callnow.store import requests as request_store
from callnow.store.models import WebhookDelivery
from callnow.store.webhooks import set_owner_url
from tests.support.world import PASSWORD
from tests.web.helpers import all_requests, form_token, set_profile

ALL_WEEK = [Window(day, 0, 0) for day in range(7)]  # open around the clock


def zone(world):
    with world.sessions() as session:
        return profiles.timezone_of(profiles.by_callnow_id(session, "alice"))


def book_page(world, query: str = ""):
    return world.client.get(f"/callnow/alice/book{query}")


def slots_on(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', html)


def book(world, slot: str, number: str = "0290375678", name: str = "Mary", **extra: str):
    page = book_page(world)
    data = {"form_token": form_token(page.text), "slot": slot, "name": name, "number": number}
    return world.client.post("/callnow/alice/book", data={**data, **extra})


def next_grid_slot(after: datetime, days: int = 0, hour: int | None = None, tz=None) -> datetime:
    """A slot on the 15-minute grid of the owner's clock, `days` after `after` (at `hour`)."""
    local = (after + timedelta(days=days)).astimezone(tz)
    if hour is not None:
        local = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    else:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=15 - local.minute % 15)
    return local.astimezone(UTC)


def test_the_booking_page_lists_slots_in_the_owners_zone_and_books_one(world):
    set_profile(world, "alice", windows=ALL_WEEK)
    page = book_page(world)
    assert page.status_code == 200
    tz = zone(world)
    assert tz.key in page.text
    slots = slots_on(page.text)
    assert slots, "an always-open page offers slots"
    answer = book(world, slots[0])
    assert answer.status_code == 303, answer.text
    request = all_requests(world)[-1]
    assert request.state == RequestState.QUEUED.value
    assert slot_value(request.scheduled_for) == slots[0]
    status = world.client.get(answer.headers["location"])
    assert "Booked for" in status.text
    assert 'aria-current="step">Booked<' in status.text
    assert "Cancel my request" in status.text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("outside", "does not take calls at that time"),
        ("too_far", "at most 2 days ahead"),
        ("past", "has already passed"),
        ("garbage", "Please choose a time from the list."),
        ("off_grid", "Please choose a time from the list."),
    ],
)
def test_a_slot_that_cannot_be_booked_gets_a_clear_answer_and_nothing_is_stored(
    world, case, message
):
    tz = zone(world)
    now = datetime.now(UTC)
    in_three_days = (now + timedelta(days=3)).astimezone(tz).weekday()
    # Open all day every day but one, three days from now, and bookable two days ahead.
    windows = [Window(day, 0, 0) for day in range(7) if day != in_three_days]
    if case == "outside":
        windows = [Window(day, 9 * 60, 17 * 60) for day in range(7)]
        days_ahead = 7
    else:
        days_ahead = 2
    set_profile(world, "alice", windows=windows, scheduling_days_ahead=days_ahead)
    slot = {
        "outside": lambda: slot_value(next_grid_slot(now, days=1, hour=20, tz=tz)),
        "too_far": lambda: slot_value(next_grid_slot(now, days=5, hour=10, tz=tz)),
        "past": lambda: slot_value(next_grid_slot(now - timedelta(hours=2), tz=tz)),
        "garbage": lambda: "tomorrow at noon",
        "off_grid": lambda: slot_value(next_grid_slot(now, days=1, tz=tz) + timedelta(minutes=7)),
    }[case]()
    answer = book(world, slot)
    assert answer.status_code == 422
    assert message in answer.text
    assert "<title>Error:" in answer.text
    assert 'id="error-summary"' in answer.text and 'href="#slot"' in answer.text
    assert all_requests(world) == []


def test_a_full_slot_is_refused_and_no_longer_listed(world):
    set_profile(world, "alice", windows=ALL_WEEK, scheduling_per_slot=1)
    slot = slots_on(book_page(world).text)[0]
    assert book(world, slot).status_code == 303
    assert slot not in slots_on(book_page(world).text)
    answer = book(world, slot, number="0290375679", name="Sam")
    assert answer.status_code == 422
    assert "That time is fully booked" in answer.text
    assert len(all_requests(world)) == 1


def test_two_places_per_slot_take_two_bookings(world):
    set_profile(world, "alice", windows=ALL_WEEK, scheduling_per_slot=2)
    slot = slots_on(book_page(world).text)[0]
    assert book(world, slot).status_code == 303
    assert slot in slots_on(book_page(world).text)
    assert book(world, slot, number="0290375679", name="Sam").status_code == 303
    assert slot not in slots_on(book_page(world).text)


def test_a_cancelled_booking_frees_its_place_and_says_so(world):
    set_profile(world, "alice", windows=ALL_WEEK)
    slot = slots_on(book_page(world).text)[0]
    status_url = book(world, slot).headers["location"]
    status = world.client.get(status_url)
    token = form_token(status.text)
    cancelled = world.client.post(f"{status_url}/cancel", data={"form_token": token})
    assert cancelled.status_code == 303
    assert all_requests(world)[0].state == RequestState.CANCELLED.value
    after = world.client.get(status_url)
    assert "The request was cancelled." in after.text
    assert 'id="more-steps"' in after.text and "Book a time for a call back" in after.text
    assert slot in slots_on(book_page(world).text)


def test_the_out_of_hours_page_offers_booking_and_a_message(world):
    tz = zone(world)
    today = datetime.now(UTC).astimezone(tz).weekday()
    closed_today = [Window((today + 1) % 7, 9 * 60, 17 * 60)]
    set_profile(world, "alice", windows=closed_today)
    page = world.client.get("/callnow/alice")
    assert "Not available right now" in page.text  # its one window is tomorrow
    assert 'href="/callnow/alice/book"' in page.text
    assert "Leave a message" in page.text
    set_profile(world, "alice", scheduling_enabled=False)
    page = world.client.get("/callnow/alice")
    assert "/callnow/alice/book" not in page.text
    assert "Leave a message" in page.text
    assert "Booking a time is not offered" in book_page(world).text


def test_booking_off_refuses_a_posted_slot(world):
    set_profile(world, "alice", windows=ALL_WEEK)
    slot = slots_on(book_page(world).text)[0]
    page = book_page(world)
    set_profile(world, "alice", scheduling_enabled=False)
    data = {"form_token": form_token(page.text), "slot": slot, "name": "Mary"}
    answer = world.client.post("/callnow/alice/book", data={**data, "number": "0290375678"})
    assert answer.status_code == 422
    assert "Booking a time is not offered on this page." in answer.text
    assert all_requests(world) == []


def test_a_booking_counts_against_the_source_limit(world):
    set_profile(world, "alice", windows=ALL_WEEK, scheduling_per_slot=20)
    slot = slots_on(book_page(world).text)[0]
    answers = [book(world, slot, number=f"02903756{n:02d}").status_code for n in range(40)]
    assert 429 in answers, answers


def test_a_hidden_page_has_no_booking_page(world):
    set_profile(world, "alice", enabled=False)
    assert book_page(world).status_code == 404


def test_a_declined_request_offers_booking_a_time(world):
    set_profile(world, "alice", windows=ALL_WEEK)
    page = world.client.get("/callnow/alice")
    answer = world.client.post(
        "/callnow/alice",
        data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
    )
    url = answer.headers["location"]
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, url.rsplit("/", 1)[1])
        request_store.move(request, RequestState.CALLING_OWNER, "test")
        request_store.move(request, RequestState.OWNER_DECLINED, "test")
    status = world.client.get(url)
    assert "You can ask again after" in status.text
    assert "Book a time for a call back" in status.text
    assert 'href="#message"' in status.text


def log_in_alice(world) -> None:
    page = world.client.get("/portal/login")
    world.client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": "alice@example.com",
              "password": PASSWORD},
    )  # fmt: skip


def test_the_owner_sees_bookings_in_the_portal_api_and_webhooks(world):
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        set_owner_url(session, user, "https://hooks.example.com/callnow")
        key = {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}
    set_profile(world, "alice", windows=ALL_WEEK)
    slot = slots_on(book_page(world).text)[0]
    url = book(world, slot, name="Mary Booker")
    token = url.headers["location"].rsplit("/", 1)[1]

    one = world.client.get(f"/api/v1/requests/{token}", headers=key).json()
    assert one["scheduled_for"] is not None
    assert slot_value(datetime.fromisoformat(one["scheduled_for"])) == slot
    with world.sessions() as session:
        payloads = [d.payload for d in session.scalars(select(WebhookDelivery))]
    assert payloads and all(
        slot_value(datetime.fromisoformat(p["request"]["scheduled_for"])) == slot for p in payloads
    )

    log_in_alice(world)
    listed = world.client.get("/portal/requests")
    assert "Booked call backs" in listed.text
    assert "Mary Booker" in listed.text


def test_the_owner_turns_booking_off_and_bounds_it_in_preferences(world):
    log_in_alice(world)
    page = world.client.get("/portal/profiles/alice/preferences")
    assert 'id="booking"' in page.text
    csrf = form_token(page.text, "csrf")
    refused = world.client.post(
        "/portal/profiles/alice/scheduling",
        data={"csrf": csrf, "scheduling_enabled": "on", "scheduling_days_ahead": "90",
              "scheduling_per_slot": "0"},
    )  # fmt: skip
    assert refused.status_code == 422
    assert "from 1 to 30" in refused.text and "from 1 to 20" in refused.text
    saved = world.client.post(
        "/portal/profiles/alice/scheduling",
        data={"csrf": csrf, "scheduling_days_ahead": "3", "scheduling_per_slot": "2"},
    )
    assert saved.status_code == 303
    with world.sessions() as session:
        profile = profiles.by_callnow_id(session, "alice")
        assert (profile.scheduling_enabled, profile.scheduling_days_ahead) == (False, 3)
        assert profile.scheduling_per_slot == 2
    assert "Booking a time is not offered on this page." in book_page(world).text


def test_inside_the_button_s_overlay_booking_stays_framable_and_in_the_frame(world):
    set_profile(world, "alice", windows=ALL_WEEK, embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    assert 'href="/callnow/alice/book?embed=1"' in page.text
    form = world.client.get("/callnow/alice/book?embed=1")
    policy = form.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.example;" in policy
    assert 'action="/callnow/alice/book?embed=1"' in form.text
    whole = world.client.get("/callnow/alice/book")
    assert "frame-ancestors 'none'" in whole.headers["content-security-policy"]
    data = {
        "form_token": form_token(form.text),
        "slot": slots_on(form.text)[0],
        "name": "Mary",
        "number": "0290375678",
    }
    answer = world.client.post("/callnow/alice/book?embed=1", data=data)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("?embed=1")
