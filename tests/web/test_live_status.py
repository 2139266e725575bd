"""The visitor's live status: an event stream that follows the request, and cancelling it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from callnow.domain.request_state import RequestState
from callnow.domain.scheduling import BOOKED_REFRESH_MAX_S
from callnow.store import profiles
from callnow.store import requests as request_store
from callnow.store.db import transaction
from callnow.store.models import utcnow
from callnow.web import live
from callnow.web.sse import StreamTiming
from tests.support.world import queued_request
from tests.web.helpers import all_requests, form_token, post_form

S = RequestState


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch):
    # Short polls keep the tests brisk; the 30 s bound only stops a broken test from hanging.
    monkeypatch.setattr(live, "TIMING", StreamTiming(poll_s=0.02, heartbeat_s=15, max_s=30))


def new_request(world, callnow_id="alice") -> str:
    response = post_form(world, callnow_id, name="Mary", number="0290375678")
    assert response.status_code == 303
    return response.headers["location"]


def move(world, status_url: str, *states: RequestState) -> None:
    token = status_url.rsplit("/", 1)[1]
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, token)
        for state in states:
            request_store.move(request, state, "test")


def sse_messages(lines: Iterator[str]) -> Iterator[dict]:
    """Parse an event stream into messages: {"event", "data", "id", "retry", "comments"}."""
    message: dict = {"comments": []}
    for line in lines:
        if line == "":
            if message != {"comments": []}:
                yield message
            message = {"comments": []}
        elif line.startswith(":"):
            message["comments"].append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            message[name] = json.loads(value) if name == "data" else value
    if message != {"comments": []}:
        yield message


def status_events(messages: Iterator[dict]) -> Iterator[dict]:
    return (m for m in messages if m.get("event") == "status")


def test_the_stream_follows_the_request_until_it_ends(world):
    url = new_request(world)
    with world.client.stream("GET", url + "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        messages = sse_messages(response.iter_lines())
        first = next(messages)
        assert first["retry"] == "3000"
        events = status_events(messages)
        queued = next(events)
        assert queued["data"] == {
            "state": "queued",
            "step": 0,
            "message": "Your request is waiting; we will call Alice Pty Owner in a moment.",
            "terminal": False,
            "cancellable": True,
        }
        assert queued["id"] == "queued"

        move(world, url, S.CALLING_OWNER)
        calling = next(events)["data"]
        # Still cancellable while the owner's phone rings: the engine stops the call.
        assert (calling["state"], calling["cancellable"]) == ("calling_owner", True)

        move(world, url, S.CALLING_VISITOR)
        assert next(events)["data"]["message"] == (
            "Alice Pty Owner accepted — we are calling you now from (02) 9037 1234."
        )
        move(world, url, S.CONNECTED)
        assert next(events)["data"]["message"] == "You are connected."
        move(world, url, S.COMPLETED)
        done = next(events)["data"]
        assert done == {
            "state": "completed",
            "step": 4,
            "message": "The call has finished. Thank you.",
            "terminal": True,
            "cancellable": False,
        }
        # The server closes the stream at a terminal state.
        assert list(events) == []


def hold_owner(world, callnow_id: str, until) -> None:
    with world.sessions() as session, session.begin():
        profiles.by_callnow_id(session, callnow_id).extension.busy_until = until


def test_the_stream_says_when_the_owner_goes_on_another_call_and_when_they_are_free(world):
    url = new_request(world)
    with world.client.stream("GET", url + "/events") as response:
        events = status_events(sse_messages(response.iter_lines()))
        assert next(events)["data"]["message"].endswith("in a moment.")
        # The engine holds the owner after their phone answered busy (for another request).
        hold_owner(world, "alice", utcnow() + timedelta(seconds=1))
        held = next(events)["data"]
        assert (held["state"], held["message"]) == (
            "queued",
            "Alice Pty Owner is on another call. Your request is waiting; we will call them as "
            "soon as they are free.",
        )
        # The hold runs out with nothing written: the page says so by itself.
        assert next(events)["data"]["message"].endswith("in a moment.")


def test_a_finished_request_streams_its_outcome_once_and_closes(world):
    url = new_request(world)
    move(world, url, S.OWNER_DECLINED)
    with world.client.stream("GET", url + "/events") as response:
        events = list(status_events(sse_messages(response.iter_lines())))
    assert [e["data"]["state"] for e in events] == ["owner_declined"]
    assert events[0]["data"]["message"] == "Alice Pty Owner cannot take your call right now."


def test_an_idle_stream_sends_heartbeats_and_ends_after_its_time(world, monkeypatch):
    url = new_request(world)
    monkeypatch.setattr(live, "TIMING", StreamTiming(poll_s=0.01, heartbeat_s=0, max_s=0.2))
    with world.client.stream("GET", url + "/events") as response:
        messages = list(sse_messages(response.iter_lines()))
    states = [m["data"]["state"] for m in messages if m.get("event") == "status"]
    assert states == ["queued"]  # sent once, not on every poll
    assert any("heartbeat" in m["comments"] for m in messages)
    # The stream ended although the request is still queued: EventSource reconnects by itself.
    assert all_requests(world)[0].state == "queued"


def test_unknown_tokens_and_other_pages_get_404(world):
    url = new_request(world)
    token = url.rsplit("/", 1)[1]
    assert world.client.get(f"/callnow/alice/requests/{'x' * 43}/events").status_code == 404
    assert world.client.get(f"/callnow/bob/requests/{token}/events").status_code == 404
    assert world.client.get(f"/callnow/nobody/requests/{token}/events").status_code == 404


def test_the_status_page_loads_the_script_and_offers_cancelling_while_queued(world):
    url = new_request(world)
    page = world.client.get(url)
    assert '<script src="/static/status.js" defer></script>' in page.text
    # The stream speaks the page's language (English here: the browser asked for none).
    assert f'data-events="{url}/events?lang=en"' in page.text
    assert 'id="status" role="status" aria-live="polite"' in page.text
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page.text
    assert f'action="{url}/cancel"' in page.text
    assert "<script>" not in page.text  # the CSP allows no inline script
    script = world.client.get("/static/status.js")
    assert script.status_code == 200
    assert "EventSource" in script.text


def refresh_of(html: str) -> int | None:
    found = re.search(r'<noscript><meta http-equiv="refresh" content="(\d+)"></noscript>', html)
    return int(found.group(1)) if found else None


def booked_status_url(world, slot) -> str:
    with transaction(world.sessions) as session:
        booked = queued_request(session, "alice", "+61290375678", scheduled_for=slot)
        return f"/callnow/alice/requests/{booked.token}"


def test_a_booked_status_page_reloads_without_scripts_at_its_slot_not_every_3_s(world):
    # A slot two days off: a long interval, not a reload every 3 s for two days.
    far = booked_status_url(world, utcnow().replace(microsecond=0) + timedelta(days=2))
    page = world.client.get(far)
    assert refresh_of(page.text) == BOOKED_REFRESH_MAX_S == 600
    # With scripts the page stays live: the stream and its script are still there.
    assert '<script src="/static/status.js" defer></script>' in page.text
    assert f'data-events="{far}/events?lang=en"' in page.text
    assert "Booked for" in page.text
    # Five minutes before its slot: the page reloads when the slot comes (a second or two of
    # this test's own time may already have passed).
    move(world, far, S.CANCELLED)
    soon = booked_status_url(world, utcnow() + timedelta(minutes=5))
    assert 295 <= refresh_of(world.client.get(soon).text) <= 300
    # The slot has come: the call may move any second, so the page follows it closely again.
    move(world, soon, S.CANCELLED)
    due = booked_status_url(world, utcnow() - timedelta(minutes=1))
    assert refresh_of(world.client.get(due).text) == 3
    # A finished booking does not reload at all.
    assert refresh_of(world.client.get(far).text) is None


def test_the_visitor_cancels_a_queued_request_once(world):
    url = new_request(world)
    token = form_token(world.client.get(url).text)
    response = world.client.post(url + "/cancel", data={"form_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == url
    [request] = all_requests(world)
    assert request.state == "cancelled"
    with world.sessions() as session:
        events = request_store.by_token(session, request.token).events
        assert (events[-1].state, events[-1].reason) == ("cancelled", "cancelled by the visitor")
    page = world.client.get(url)
    assert "The request was cancelled." in page.text
    assert "/cancel" not in page.text and "status.js" not in page.text
    again = world.client.post(url + "/cancel", data={"form_token": token})
    assert again.status_code == 409
    assert all_requests(world)[0].state == "cancelled"


def test_cancelling_while_the_owner_is_called_asks_the_engine_to_stop(world):
    url = new_request(world)
    token = form_token(world.client.get(url).text)
    move(world, url, S.CALLING_OWNER)
    response = world.client.post(url + "/cancel", data={"form_token": token})
    assert response.status_code == 303
    [request] = all_requests(world)
    # The engine holding the call sees the wish and ends it; the state moves when it has.
    assert request.state == "calling_owner"
    assert request.cancel_requested_at is not None
    with world.sessions() as session:
        events = request_store.by_token(session, request.token).events
        assert (events[-1].state, events[-1].reason) == (
            "calling_owner",
            "the visitor asked to cancel",
        )


def test_cancelling_is_refused_once_we_are_calling_the_visitor(world):
    url = new_request(world)
    token = form_token(world.client.get(url).text)
    move(world, url, S.CALLING_OWNER)
    move(world, url, S.CALLING_VISITOR)
    response = world.client.post(url + "/cancel", data={"form_token": token})
    assert response.status_code == 409
    assert all_requests(world)[0].cancel_requested_at is None


def test_a_queued_request_held_by_an_engine_is_cancelled_through_the_engine(world):
    url = new_request(world)
    token = form_token(world.client.get(url).text)
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, url.rsplit("/", 1)[1])
        request.claimed_by = "engine-1"
        request.lease_expires_at = utcnow() + timedelta(seconds=30)
    assert world.client.post(url + "/cancel", data={"form_token": token}).status_code == 303
    [request] = all_requests(world)
    assert request.state == "queued" and request.cancel_requested_at is not None


def test_cancelling_needs_this_pages_form_token(world):
    url = new_request(world)
    other = new_request(world, "bob")
    other_token = form_token(world.client.get(other).text)
    assert world.client.post(url + "/cancel", data={}).status_code == 400
    assert world.client.post(url + "/cancel", data={"form_token": other_token}).status_code == 400
    assert world.client.post(url + "/cancel", data={"form_token": "forged"}).status_code == 400
    assert all_requests(world)[0].state == "queued"
    token = url.rsplit("/", 1)[1]
    assert world.client.post(f"/callnow/bob/requests/{token}/cancel").status_code == 404
