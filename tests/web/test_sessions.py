"""Portal sessions: a cookie that is only a random token, ended by logout, lifetimes, the
owner's list of sessions, and logins that strangers cannot lock an owner out of."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from callnow.store.models import utcnow
from callnow.store.session_models import WebSession
from tests.support.world import PASSWORD
from tests.web.helpers import form_token
from tests.web.test_portal import log_in, log_out

HOME = ("198.51.100.20", 40000)  # the owner's usual network
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def client_from(world, address, user_agent="testclient") -> TestClient:
    return TestClient(
        world.client.app,
        base_url="http://testserver",
        follow_redirects=False,
        client=address,
        headers={"user-agent": user_agent},
    )


def log_in_with(client, email="alice@example.com", password=PASSWORD, **extra):
    page = client.get("/portal/login")
    data = {"csrf": form_token(page.text, "csrf"), "email": email, "password": password}
    return client.post("/portal/login", data={**data, **extra})


def rows(world) -> list[WebSession]:
    with world.sessions() as session:
        return list(session.scalars(select(WebSession).order_by(WebSession.id)))


def test_the_cookie_is_a_random_token_and_only_its_hash_is_stored(world):
    log_in(world)
    token = world.client.cookies["callnow_session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    [row] = rows(world)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.realm == "portal" and row.revoked_at is None


def test_a_cookie_replayed_after_logout_is_refused(world):
    log_in(world)
    copied = world.client.cookies["callnow_session"]
    assert log_out(world).status_code == 303
    thief = client_from(world, ("203.0.113.5", 1234))
    thief.cookies.set("callnow_session", copied)
    response = thief.get("/portal")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login"
    assert rows(world)[0].revoked_at is not None


def test_logout_without_the_token_does_nothing(world):
    log_in(world)
    assert world.client.post("/portal/logout").status_code == 303
    forged = world.client.post("/portal/logout", data={"csrf": "forged"})
    assert forged.headers["location"] == "/portal"
    # A token from another browser's session (a cross-site page could hold one) is not this one's.
    other = client_from(world, HOME)
    log_in_with(other, "bob@example.com")
    foreign = form_token(other.get("/portal").text, "csrf")
    world.client.post("/portal/logout", data={"csrf": foreign})
    assert world.client.get("/portal").status_code == 200
    assert all(row.revoked_at is None for row in rows(world))


def test_an_idle_session_and_an_old_session_end(world):
    log_in(world)
    idle = world.settings.web.session_idle_s
    with world.sessions() as session, session.begin():
        session.execute(
            update(WebSession).values(last_seen_at=utcnow() - timedelta(seconds=idle + 1))
        )
    assert world.client.get("/portal").status_code == 303
    log_in(world)
    absolute = world.settings.web.session_absolute_s
    with world.sessions() as session, session.begin():
        session.execute(
            update(WebSession)
            .where(WebSession.revoked_at.is_(None))
            .values(created_at=utcnow() - timedelta(seconds=absolute + 1))
        )
    assert world.client.get("/portal").status_code == 303


def test_the_owner_sees_their_sessions_and_logs_out_everywhere(world):
    log_in(world)
    laptop = client_from(world, HOME, FIREFOX)
    assert log_in_with(laptop).status_code == 303
    page = world.client.get("/portal/sessions")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Firefox on Linux" in page.text and "198.51.100.0/24" in page.text
    assert "Australia/Sydney" in page.text and "(this browser)" in page.text
    everywhere = world.client.post(
        "/portal/sessions", data={"csrf": form_token(page.text, "csrf"), "op": "all"}
    )
    assert everywhere.headers["location"] == "/portal/login"
    assert laptop.get("/portal").status_code == 303
    assert world.client.get("/portal").status_code == 303


def test_the_owner_ends_one_other_session_but_not_someone_elses(world):
    log_in(world)
    laptop = client_from(world, HOME, FIREFOX)
    log_in_with(laptop)
    bob = client_from(world, ("192.0.2.7", 1))
    log_in_with(bob, "bob@example.com")
    laptop_id, bob_id = rows(world)[1].id, rows(world)[2].id
    token = form_token(world.client.get("/portal/sessions").text, "csrf")
    refused = world.client.post(
        "/portal/sessions", data={"csrf": token, "op": "end", "session_id": str(bob_id)}
    )
    assert refused.status_code == 404
    ended = world.client.post(
        "/portal/sessions", data={"csrf": token, "op": "end", "session_id": str(laptop_id)}
    )
    assert ended.headers["location"] == "/portal/sessions"
    assert laptop.get("/portal").status_code == 303
    assert bob.get("/portal").status_code == 200
    assert world.client.get("/portal").status_code == 200


def test_after_a_brute_force_from_elsewhere_the_owner_logs_in_from_home_with_a_captcha(world):
    home = client_from(world, HOME)
    assert log_in_with(home).status_code == 303  # home is now a known network
    # Networks guess: each meets 429 after five wrong passwords, and after ten in all the
    # account is under attack, so a third network is refused from its first try.
    statuses = []
    for network in ("203.0.113", "192.0.2", "100.64.0"):
        attacker = client_from(world, (f"{network}.9", 5555))
        for _ in range(7):
            statuses.append(log_in_with(attacker, password="wrong password!!").status_code)
    assert statuses == ([401] * 5 + [429] * 2) * 2 + [429] * 7
    fresh = client_from(world, ("233.252.0.9", 1))
    assert log_in_with(fresh).status_code == 429
    # The owner, from home: a CAPTCHA, not a 429; the right answer and password get in.
    owner = client_from(world, ("198.51.100.77", 2))
    asked = log_in_with(owner)
    assert asked.status_code == 401
    challenge = form_token(asked.text, "captcha_token")
    image = owner.get(f"/portal/login/captcha/{challenge}.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    wrong = log_in_with(owner, captcha_token=challenge, captcha_answer="000000x")
    assert wrong.status_code == 401
    challenge = form_token(wrong.text, "captcha_token")
    answer = world.client.app.state.callnow.safeguards.captcha.answer_for(challenge)
    entered = log_in_with(owner, captcha_token=challenge, captcha_answer=answer)
    assert entered.status_code == 303
    assert owner.get("/portal").status_code == 200


def test_the_pending_stream_ends_when_the_session_does(world, monkeypatch):
    from callnow.web import owner_live
    from callnow.web.sse import StreamTiming

    monkeypatch.setattr(owner_live, "TIMING", StreamTiming(poll_s=0.02, max_s=30))
    log_in(world)
    with world.client.stream("GET", "/portal/pending/events") as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        with world.sessions() as session, session.begin():
            session.execute(update(WebSession).values(revoked_at=utcnow()))
        rest = list(lines)  # the stream ends by itself
    assert not any(line.startswith("data: ") for line in rest)
