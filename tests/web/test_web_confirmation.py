"""Owner confirmation on the web: the pending list, Accept, Decline, and the timeout."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain import web_confirmation as rules
from callnow.domain.request_state import RequestState
from callnow.store import requests as request_store
from callnow.store.models import utcnow
from callnow.store.web_confirmation import expire_web_confirmations
from callnow.web import owner_live
from callnow.web.sse import StreamTiming
from tests.web.helpers import all_requests, post_form, set_profile
from tests.web.test_portal import log_in, log_out, preferences_form


@pytest.fixture
def held(world) -> str:
    """A request on alice's page waiting for her click; returns its token."""
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name="Mary", number="0290375678").status_code == 303
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("queued", "confirm_web")
    return request.token


def csrf(world) -> str:
    """The portal's CSRF token, as pending.js reads it (the list may have no forms yet)."""
    match = re.search(r'data-csrf="([^"]+)"', world.client.get("/portal/pending").text)
    assert match
    return match.group(1)


def last_event(world, token: str) -> tuple[str, str]:
    with world.sessions() as session:
        event = request_store.by_token(session, token).events[-1]
        return event.state, event.reason


def age(world, token: str, minutes: float) -> None:
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, token)
        request.created_at = utcnow() - timedelta(minutes=minutes)


def test_the_owner_sees_held_requests_with_accept_and_decline(world, held):
    log_in(world)
    page = world.client.get("/portal/pending")
    assert page.status_code == 200
    assert "Mary" in page.text and "(02) 9037 5678" in page.text
    assert f'action="/portal/requests/{held}/accept"' in page.text
    assert f'action="/portal/requests/{held}/decline"' in page.text
    assert 'aria-live="polite"' in page.text
    assert '<script src="/static/pending.js" defer></script>' in page.text
    assert "1 waiting" in page.text


def test_every_portal_page_names_pending_with_its_count_and_marks_where_the_owner_is(world, held):
    log_in(world)
    for path, current in [
        ("/portal", "My pages"),
        ("/portal/requests", "Requests"),
        ("/portal/webhooks", "Webhooks"),
        ("/portal/profiles/alice/rules", "My pages"),
    ]:
        page = world.client.get(path).text
        nav = page[page.index('<nav aria-label="Portal"') : page.index("</nav>")]
        assert re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)', nav) == [current], path
        assert '<a href="/portal/webhooks"' in nav
        assert 'id="nav-pending-count"' in nav
        assert '/portal/pending/count/events">1</span><span class="visually-hidden"> waiting' in nav
    pending = world.client.get("/portal/pending").text
    assert '<a href="/portal/pending" aria-current="page">Pending' in pending
    # Times on the page's clock (Sydney), named; the number national, E.164 in the title.
    assert re.search(r"asked at \d\d:\d\d AE[DS]T", pending)
    assert 'title="+61290375678" data-e164="+61290375678">(02) 9037 5678</span>' in pending


def test_another_owner_sees_nothing_and_cannot_answer(world, held):
    log_in(world, email="bob@example.com")
    page = world.client.get("/portal/pending")
    assert held not in page.text and "0 waiting" in page.text
    token = csrf(world)
    for action in ("accept", "decline"):
        response = world.client.post(f"/portal/requests/{held}/{action}", data={"csrf": token})
        assert response.status_code == 404
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("queued", "confirm_web")


def test_accept_hands_the_request_to_the_dispatcher(world, held):
    log_in(world)
    response = world.client.post(f"/portal/requests/{held}/accept", data={"csrf": csrf(world)})
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/pending"
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("queued", "web")
    assert last_event(world, held) == ("queued", "accepted on the web")
    assert held not in world.client.get("/portal/pending").text
    # Answering twice is refused; the first answer stands.
    again = world.client.post(f"/portal/requests/{held}/decline", data={"csrf": csrf(world)})
    assert again.status_code == 409
    assert "no longer waiting" in again.text
    assert all_requests(world)[0].state == "queued"


def test_decline_ends_the_request(world, held):
    log_in(world)
    response = world.client.post(f"/portal/requests/{held}/decline", data={"csrf": csrf(world)})
    assert response.status_code == 303
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("owner_declined", "confirm_web")
    assert last_event(world, held) == ("owner_declined", "declined on the web")
    status = world.client.get(f"/callnow/alice/requests/{held}")
    assert "Alice Pty Owner cannot take your call right now." in status.text


def test_answers_need_the_portal_csrf_token_and_a_login(world, held):
    log_in(world)
    assert world.client.post(f"/portal/requests/{held}/accept", data={}).status_code == 400
    forged = world.client.post(f"/portal/requests/{held}/decline", data={"csrf": "forged"})
    assert forged.status_code == 400
    log_out(world)
    anonymous = world.client.post(f"/portal/requests/{held}/accept", data={"csrf": "x"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/portal/login"
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("queued", "confirm_web")


def test_requests_the_phone_confirms_are_not_offered_on_the_web(world):
    post_form(world, "alice", name="Mary", number="0290375678")  # confirm_on_web is off
    [request] = all_requests(world)
    log_in(world)
    assert request.token not in world.client.get("/portal/pending").text
    response = world.client.post(
        f"/portal/requests/{request.token}/accept", data={"csrf": csrf(world)}
    )
    assert response.status_code == 409
    assert all_requests(world)[0].decision == "confirm"


def test_an_expired_request_cannot_be_accepted_and_the_sweep_ends_it(world, held):
    log_in(world)
    token = csrf(world)
    age(world, held, minutes=11)
    assert held not in world.client.get("/portal/pending").text
    response = world.client.post(f"/portal/requests/{held}/accept", data={"csrf": token})
    assert response.status_code == 409
    with world.sessions() as session, session.begin():
        assert expire_web_confirmations(session, utcnow()) == 1
    with world.sessions() as session, session.begin():
        assert expire_web_confirmations(session, utcnow()) == 0
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("owner_unreachable", "confirm_web")
    assert last_event(world, held) == ("owner_unreachable", "no answer on the web")


def test_the_sweep_leaves_young_accepted_and_phone_requests_alone(world, held):
    set_profile(world, "alice", confirm_on_web=False)
    post_form(world, "alice", name="Ann", number="0290375679")  # decision confirm
    set_profile(world, "bob", confirm_on_web=True)
    post_form(world, "bob", name="Bea", number="0290375670")  # held, but young
    phone, young = all_requests(world)[1:]
    age(world, phone.token, minutes=30)
    with world.sessions() as session, session.begin():
        assert expire_web_confirmations(session, utcnow()) == 0
        assert expire_web_confirmations(session, utcnow() + timedelta(minutes=10)) == 2
    states = {r.token: r.state for r in all_requests(world)}
    assert states == {
        held: "owner_unreachable",
        phone.token: "queued",
        young.token: "owner_unreachable",
    }


def test_the_timeout_rule():
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert not rules.has_expired(start, start + timedelta(minutes=9, seconds=59))
    assert rules.has_expired(start, start + timedelta(minutes=10))
    assert rules.has_expired(start, start + timedelta(minutes=3), timedelta(minutes=2))
    assert rules.deadline(start) == start + timedelta(minutes=10)
    with pytest.raises(ValueError):
        rules.has_expired(start, start, timedelta(0))


def test_the_owner_turns_web_confirmation_on_in_preferences(world):
    log_in(world)
    page, data = preferences_form(world)
    assert 'name="confirm_on_web"' in page.text
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 200
    post_form(world, "alice", name="Mary", number="0290375678")
    data["confirm_on_web"] = "on"
    saved = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert saved.status_code == 200
    assert 'name="confirm_on_web" aria-describedby="confirm_on_web-hint" checked' in saved.text
    post_form(world, "alice", name="Mary", number="0290375679")
    assert [r.decision for r in all_requests(world)] == ["confirm", "confirm_web"]


def test_the_pending_stream_follows_new_and_answered_requests(world, held, monkeypatch):
    monkeypatch.setattr(owner_live, "TIMING", StreamTiming(poll_s=0.02, max_s=30))
    log_in(world)
    assert world.client.get("/portal/pending/events").status_code == 200
    with world.client.stream("GET", "/portal/pending/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = (
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        )
        assert [i["token"] for i in next(data)["items"]] == [held]
        post_form(world, "alice", name="Ann", number="0290375679")
        second = all_requests(world)[1].token
        assert [i["token"] for i in next(data)["items"]] == [held, second]
        with world.sessions() as session, session.begin():
            request_store.move(
                request_store.by_token(session, held), RequestState.CANCELLED, "test"
            )
        items = next(data)["items"]
        assert items == [
            {
                "token": second,
                "callnow_id": "alice",
                "name": "Ann",
                "number": "(02) 9037 5679",
                "e164": "+61290375679",
                "requested": items[0]["requested"],
                "expires": items[0]["expires"],
                "cost": "a local call, 12 cents",
            }
        ]


def test_the_navigation_count_stream_follows_waiting_requests(world, held, monkeypatch):
    monkeypatch.setattr(owner_live, "COUNT_TIMING", StreamTiming(poll_s=0.02, max_s=30))
    log_in(world)
    with world.client.stream("GET", "/portal/pending/count/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = (
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        )
        assert next(data) == {"count": 1}
        post_form(world, "alice", name="Ann", number="0290375679")
        assert next(data) == {"count": 2}
        age(world, held, minutes=rules.DEFAULT_TIMEOUT.total_seconds() / 60 + 1)
        assert next(data) == {"count": 1}


def test_the_pending_stream_needs_a_login(world):
    assert world.client.get("/portal/pending/count/events").status_code == 401
    assert world.client.get("/portal/pending/events").status_code == 401
    assert world.client.get("/portal/pending").status_code == 303


def test_the_pending_list_says_what_calling_back_will_cost(world, held):
    from callnow.bootstrap import seed_default_deck

    with world.sessions() as session, session.begin():
        seed_default_deck(session)
    log_in(world)
    page = world.client.get("/portal/pending")
    assert "Calling back: a local call, 12 cents" in page.text
