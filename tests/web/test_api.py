"""Call API v1 with the keys of two owners: each reaches only its own data."""

import pytest

from callnow.store import accounts
from tests.web.helpers import all_requests


@pytest.fixture
def keys(world):
    issued = {}
    with world.sessions() as session, session.begin():
        for email in ("alice@example.com", "bob@example.com"):
            user = accounts.by_email(session, email)
            issued[email.split("@")[0]] = {
                "authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"
            }
    return issued


def test_health_needs_no_key(world):
    assert world.client.get("/api/v1/health").json() == {
        "status": "ok",
        "database": "ok",
        "engine": "elsewhere",  # this app runs the web only
        "trunks": [],  # registrations are known only where the engine runs
    }


def test_health_fails_when_the_engine_of_this_process_has_stopped(world):
    world.client.app.state.callnow.engine_status = lambda: "stopped"
    answer = world.client.get("/api/v1/health")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the call engine has stopped; restart the service"


def test_the_openapi_document_is_served(world):
    spec = world.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/profiles/{callnow_id}/requests" in spec["paths"]


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer cn_x_y"])
def test_requests_without_a_valid_key_are_refused(world, header):
    headers = {"authorization": header} if header else {}
    response = world.client.get("/api/v1/profiles", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_owner_lists_and_reads_only_their_profile(world, keys):
    listed = world.client.get("/api/v1/profiles", headers=keys["alice"]).json()
    assert [p["callnow_id"] for p in listed] == ["alice"]
    assert world.client.get("/api/v1/profiles/alice", headers=keys["alice"]).status_code == 200
    assert world.client.get("/api/v1/profiles/bob", headers=keys["alice"]).status_code == 404


def test_an_owner_updates_preferences_and_hours(world, keys):
    response = world.client.patch(
        "/api/v1/profiles/alice",
        headers=keys["alice"],
        json={
            "confirmation_required": False,
            "welcome_message": "Hi",
            "windows": [{"weekday": 0, "start": "09:00", "end": "17:00"}],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["confirmation_required"] is False
    assert body["windows"] == [{"weekday": 0, "start": "09:00", "end": "17:00"}]


def test_an_owner_renames_what_their_page_shows(world, keys):
    response = world.client.patch(
        "/api/v1/profiles/alice",
        headers=keys["alice"],
        json={"display_name": "Alice at Acme", "show_name": True},
    )
    assert response.status_code == 200
    assert "Alice at Acme" in world.client.get("/callnow/alice").text
    bad = world.client.patch(
        "/api/v1/profiles/alice", headers=keys["alice"], json={"display_name": "a\u0007b"}
    )
    assert bad.status_code == 422 and "control characters" in bad.text


@pytest.mark.parametrize(
    "change",
    [
        {"callnow_id": "admin"},
        {"callnow_id": "bob"},
        {"enabled": None},
        {"unknown": 1},
        {"windows": [{"weekday": 9, "start": "09:00", "end": "17:00"}]},
        {"windows": [{"weekday": 1, "start": "29:00", "end": "17:00"}]},
        {"welcome_message": "x" * 501},
    ],
)
def test_invalid_profile_changes_are_refused_and_change_nothing(world, keys, change):
    response = world.client.patch("/api/v1/profiles/alice", headers=keys["alice"], json=change)
    assert response.status_code in (409, 422)
    assert response.json()["detail"]
    profile = world.client.get("/api/v1/profiles/alice", headers=keys["alice"]).json()
    assert profile["callnow_id"] == "alice" and profile["enabled"] is True


def test_an_owner_cannot_change_another_owners_profile_or_rules(world, keys):
    assert (
        world.client.patch(
            "/api/v1/profiles/bob", headers=keys["alice"], json={"enabled": False}
        ).status_code
        == 404
    )
    assert (
        world.client.put("/api/v1/profiles/bob/rules", headers=keys["alice"], json=[]).status_code
        == 404
    )
    assert world.client.get("/api/v1/profiles/bob", headers=keys["bob"]).json()["enabled"]


def test_rules_are_replaced_as_a_whole_in_order(world, keys):
    rules = [
        {"action": "reject", "number_match": "prefix", "number_value": "+614"},
        {"action": "accept", "name_match": "contains", "name_value": "mum"},
    ]
    response = world.client.put("/api/v1/profiles/alice/rules", headers=keys["alice"], json=rules)
    assert response.status_code == 200
    assert [r["action"] for r in response.json()] == ["reject", "accept"]
    assert response.json()[0]["number_value"] == "614"
    bad = world.client.put(
        "/api/v1/profiles/alice/rules", headers=keys["alice"], json=[{"action": "reject"}]
    )
    assert bad.status_code == 422
    kept = world.client.get("/api/v1/profiles/alice/rules", headers=keys["alice"]).json()
    assert len(kept) == 2


def test_creating_a_request_returns_its_state_and_history(world, keys):
    response = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=keys["alice"],
        json={"name": "Mary", "number": "02 9037 5678"},
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["state"], body["decision"], body["number"]) == (
        "queued",
        "confirm",
        "+61290375678",
    )
    assert [e["state"] for e in body["events"]] == ["received", "queued"]
    fetched = world.client.get(f"/api/v1/requests/{body['token']}", headers=keys["alice"])
    assert fetched.json()["token"] == body["token"]
    assert (
        world.client.get(f"/api/v1/requests/{body['token']}", headers=keys["bob"]).status_code
        == 404
    )


def test_the_same_idempotency_key_returns_the_first_result(world, keys):
    headers = {**keys["alice"], "idempotency-key": "order-42"}
    first = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=headers,
        json={"name": "Mary", "number": "0290375678"},
    )
    again = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=headers,
        json={"name": "Other", "number": "0412345678"},
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["token"] == first.json()["token"]
    assert len(all_requests(world)) == 1


def test_a_bad_number_through_the_api_is_refused_with_the_field(world, keys):
    response = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=keys["alice"],
        json={"name": "Mary", "number": "0290375678;evil"},
    )
    assert response.status_code == 422
    assert "number" in response.json()["errors"]
    assert all_requests(world) == []


def test_an_owner_lists_only_their_requests(world, keys):
    world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=keys["alice"],
        json={"name": "Mary", "number": "0290375678"},
    )
    assert (
        len(world.client.get("/api/v1/profiles/alice/requests", headers=keys["alice"]).json()) == 1
    )
    assert (
        world.client.get("/api/v1/profiles/alice/requests", headers=keys["bob"]).status_code == 404
    )
