"""Booking a time through the Call API: `scheduled_for` (ISO 8601 with an offset) books a slot
under the booking page's own rules, and each refusal has a stable code and a sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.availability import Window
from callnow.domain.request_state import RequestState
from callnow.services.scheduling import slot_value
from callnow.store import accounts
from tests.web.helpers import all_requests, set_profile
from tests.web.test_booking import ALL_WEEK, book, next_grid_slot, zone

URL = "/api/v1/profiles/alice/requests"


@pytest.fixture
def key(world):
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        return {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}


def post(world, key, scheduled_for, number="0290375678", **headers):
    body = {"name": "Mary", "number": number}
    if scheduled_for is not None:
        body["scheduled_for"] = scheduled_for
    return world.client.post(URL, headers={**key, **headers}, json=body)


def test_an_api_request_books_a_slot_given_with_the_owners_offset(world, key):
    set_profile(world, "alice", windows=ALL_WEEK)
    tz = zone(world)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=10, tz=tz)
    # The slot as the owner's clock writes it, with its offset (+11:00 in a Sydney summer).
    answer = post(world, key, slot.astimezone(tz).isoformat())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["state"] == "queued" and body["channel"] == "api"
    assert datetime.fromisoformat(body["scheduled_for"]) == slot
    [stored] = all_requests(world)
    assert (stored.state, stored.scheduled_for) == (RequestState.QUEUED.value, slot)
    # The same instant in UTC is the same slot: now full for the booking page too.
    refused = book(world, slot_value(slot), number="0290375679", name="Sam")
    assert refused.status_code == 422 and "That time is fully booked" in refused.text
    again = post(world, key, slot.isoformat().replace("+00:00", "Z"), number="0290375679")
    assert again.status_code == 409
    assert again.json()["code"] == "slot_full"
    assert "That slot already has 1 booking" in again.json()["detail"]
    assert again.json()["errors"] == {"scheduled_for": again.json()["detail"]}
    assert len(all_requests(world)) == 1


def test_without_scheduled_for_the_api_still_asks_for_a_call_now(world, key):
    answer = post(world, key, None)
    assert answer.status_code == 201
    assert answer.json()["scheduled_for"] is None


@pytest.mark.parametrize(
    ("case", "status", "code", "words"),
    [
        ("outside", 422, "slot_outside_hours", "outside the page's hours"),
        ("too_far", 422, "slot_too_far_ahead", "more than 2 days ahead"),
        ("past", 422, "slot_in_past", "has already passed"),
        ("off_grid", 422, "slot_not_on_grid", "minute 00, 15, 30 or 45"),
        ("seconds", 422, "slot_not_on_grid", "no seconds"),
        ("booking_off", 409, "booking_not_offered", "does not offer booking"),
    ],
)
def test_a_time_the_booking_rules_refuse_gets_its_code_and_nothing_is_stored(
    world, key, case, status, code, words
):
    tz = zone(world)
    now = datetime.now(UTC)
    windows = [Window(day, 9 * 60, 17 * 60) for day in range(7)] if case == "outside" else ALL_WEEK
    set_profile(
        world,
        "alice",
        windows=windows,
        scheduling_days_ahead=2,
        scheduling_enabled=case != "booking_off",
    )
    tomorrow_10 = next_grid_slot(now, days=1, hour=10, tz=tz)
    slot = {
        "outside": next_grid_slot(now, days=1, hour=20, tz=tz),
        "too_far": next_grid_slot(now, days=5, hour=10, tz=tz),
        "past": next_grid_slot(now - timedelta(hours=2), tz=tz),
        "off_grid": tomorrow_10 + timedelta(minutes=7),
        "seconds": tomorrow_10 + timedelta(seconds=30),
        "booking_off": tomorrow_10,
    }[case]
    answer = post(world, key, slot.astimezone(tz).isoformat())
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code
    assert words in body["detail"]
    assert body["errors"] == {"scheduled_for": body["detail"]}
    if case in ("off_grid", "outside"):
        assert tz.key in body["detail"]  # whose clock the grid and the hours are on
    assert all_requests(world) == []


@pytest.mark.parametrize(
    "value", ["2026-12-07T09:15:00", "tomorrow at ten", "2026-13-07T09:15:00+11:00"]
)
def test_a_time_without_an_offset_or_unreadable_is_refused_as_the_bodys_shape(world, key, value):
    answer = post(world, key, value)
    assert answer.status_code == 422
    [issue] = answer.json()["detail"]
    assert issue["loc"] == ["body", "scheduled_for"]
    assert all_requests(world) == []


def test_two_places_per_slot_take_two_api_bookings_then_refuse(world, key):
    set_profile(world, "alice", windows=ALL_WEEK, scheduling_per_slot=2)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=11, tz=zone(world)).isoformat()
    assert post(world, key, slot, number="0290375601").status_code == 201
    assert post(world, key, slot, number="0290375602").status_code == 201
    third = post(world, key, slot, number="0290375603")
    assert (third.status_code, third.json()["code"]) == (409, "slot_full")
    assert "2 bookings" in third.json()["detail"]
    assert len(all_requests(world)) == 2


def test_an_idempotent_retry_of_a_booking_returns_the_booking_not_a_full_slot(world, key):
    set_profile(world, "alice", windows=ALL_WEEK)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=12, tz=zone(world)).isoformat()
    first = post(world, key, slot, **{"idempotency-key": "booking-7"})
    again = post(world, key, slot, **{"idempotency-key": "booking-7"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["token"] == first.json()["token"]
    assert len(all_requests(world)) == 1


def test_a_booking_on_a_confirm_on_the_web_page_is_confirmed_on_the_phone(world, key):
    # A portal click waits minutes, not days: as on the booking page.
    set_profile(world, "alice", windows=ALL_WEEK, confirm_on_web=True)
    slot = next_grid_slot(datetime.now(UTC), days=1, hour=13, tz=zone(world)).isoformat()
    answer = post(world, key, slot)
    assert answer.status_code == 201
    assert answer.json()["decision"] == "confirm"


def test_the_openapi_document_describes_scheduled_for_and_its_refusals(world):
    spec = world.client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/profiles/{callnow_id}/requests"]["post"]
    assert "409" in operation["responses"]
    schemas = spec["components"]["schemas"]
    field = schemas["RequestIn"]["properties"]["scheduled_for"]
    assert any(option.get("format") == "date-time" for option in field["anyOf"])
    assert "15-minute slot" in field["description"]
    assert set(schemas["SlotRefused"]["properties"]["code"]["enum"]) == {
        "booking_not_offered",
        "slot_full",
    }
