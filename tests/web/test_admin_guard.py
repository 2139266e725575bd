"""The guarded admin: sessions that end, a throttled and audited login, CSRF tokens on every
form, and headers that forbid framing."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.store import audit
from callnow.store.models import Profile, User
from tests.support.world import PASSWORD
from tests.web.helpers import form_token
from tests.web.test_admin import admin_login, make_admin
from tests.web.test_portal import log_in

ROOT = "root@example.com"


def other_client(world, address=("203.0.113.5", 1234)) -> TestClient:
    return TestClient(
        world.client.app, base_url="http://testserver", follow_redirects=False, client=address
    )


def admin_log_out(client):
    confirm = client.get("/admin/logout")
    assert confirm.status_code == 200  # a GET only asks; it ends nothing
    return client.post("/admin/logout", data={"csrf_token": form_token(confirm.text, "csrf_token")})


def test_an_admin_cookie_replayed_after_logout_is_refused(world):
    make_admin(world)
    assert admin_login(world, ROOT).status_code in (302, 303)
    copied = world.client.cookies["callnow_admin"]
    assert len(copied) == 43
    assert world.client.get("/admin/tenant/list").status_code == 200
    assert world.client.get("/admin/tenant/list").status_code == 200  # GET logout changed nothing
    assert admin_log_out(world.client).status_code == 303
    thief = other_client(world)
    thief.cookies.set("callnow_admin", copied)
    assert thief.get("/admin/tenant/list").status_code in (302, 303)
    assert world.client.get("/admin/tenant/list").status_code in (302, 303)


def test_admin_logout_without_the_token_does_nothing(world):
    make_admin(world)
    admin_login(world, ROOT)
    refused = world.client.post("/admin/logout")
    assert refused.status_code == 403
    assert world.client.get("/admin/tenant/list").status_code == 200


def test_forty_wrong_admin_passwords_meet_a_throttle(world):
    make_admin(world)
    statuses = [admin_login(world, ROOT, "wrong password!!").status_code for _ in range(40)]
    assert statuses[0] == 400 and 429 in statuses
    assert statuses.count(400) <= 5
    # The right password from the same place is refused too while the throttle holds.
    assert admin_login(world, ROOT).status_code == 429
    with world.sessions() as session:
        failed = [e for e in audit.recent(session, limit=100) if e.action == "admin.login_failed"]
    assert len(failed) == statuses.count(400)
    assert failed[0].subject == ROOT and failed[0].details["outcome"] == "wrong"


def test_admin_logins_are_audited(world):
    make_admin(world)
    assert admin_login(world, "alice@example.com").status_code == 400  # an owner, not an admin
    assert admin_login(world, ROOT).status_code in (302, 303)
    with world.sessions() as session:
        actions = [(e.action, e.subject) for e in audit.recent(session, limit=10)]
    assert ("admin.login", ROOT) in actions
    assert ("admin.login_failed", "alice@example.com") in actions


def test_an_admin_post_without_a_valid_token_is_refused(world):
    make_admin(world)
    admin_login(world, ROOT)
    with world.sessions() as session:
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one()
    form = {"extension": str(profile.extension_id), "callnow_id": "bob.b", "enabled": "y"}
    for token in (None, "forged"):
        data = form if token is None else {**form, "csrf_token": token}
        refused = world.client.post(f"/admin/profile/edit/{profile.id}", data=data)
        assert refused.status_code == 403
    # A token from another admin session is not this session's.
    with world.sessions() as session, session.begin():
        from callnow.store import provisioning

        provisioning.create_user(session, "ops@example.com", PASSWORD, role="platform_admin")
    ops = other_client(world)
    admin_login(world, "ops@example.com", client=ops)
    foreign = form_token(ops.get(f"/admin/profile/edit/{profile.id}").text, "csrf_token")
    refused = world.client.post(
        f"/admin/profile/edit/{profile.id}", data={**form, "csrf_token": foreign}
    )
    assert refused.status_code == 403
    # The login form itself needs its token.
    login = other_client(world).post("/admin/login", data={"username": ROOT, "password": PASSWORD})
    assert login.status_code == 403
    with world.sessions() as session:
        assert session.get(Profile, profile.id).callnow_id == "bob"


def test_the_admin_cannot_be_framed(world):
    make_admin(world)
    for path in ("/admin/login", "/admin/tenant/list"):
        response = world.client.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self';" in response.headers["content-security-policy"]
    admin_login(world, ROOT)
    page = world.client.get("/admin/tenant/list")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_an_admin_ends_an_owners_sessions(world):
    log_in(world)
    make_admin(world)
    admin = other_client(world)
    admin_login(world, ROOT, client=admin)
    page = admin.get("/admin/sessions")
    assert page.status_code == 200 and "alice@example.com" in page.text
    with world.sessions() as session:
        from callnow.store.session_models import WebSession

        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        [row] = session.scalars(select(WebSession).where(WebSession.user_id == alice.id))
    ended = admin.post(
        "/admin/sessions",
        data={"csrf_token": form_token(page.text, "csrf_token"), "session_id": row.id, "op": "one"},
    )
    assert ended.status_code == 303
    assert world.client.get("/portal").status_code == 303
    with world.sessions() as session:
        assert any(e.action == "session.revoke" for e in audit.recent(session, limit=10))


def test_a_new_password_from_the_admin_ends_the_users_sessions(world):
    log_in(world)
    assert world.client.get("/portal").status_code == 200
    make_admin(world)
    admin = other_client(world)
    admin_login(world, ROOT, client=admin)
    with world.sessions() as session:
        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
    edit = admin.get(f"/admin/user/edit/{alice.id}")
    assert edit.status_code == 200
    form = {
        "email": "alice@example.com",
        "password_hash": "a brand new password",
        "role": "owner",
        "tenant": str(alice.tenant_id),
        "display_name": "Alice Pty",
        "is_active": "y",
        "csrf_token": form_token(edit.text, "csrf_token"),
    }
    saved = admin.post(f"/admin/user/edit/{alice.id}", data=form)
    assert saved.status_code in (302, 303), saved.text[:300]
    assert world.client.get("/portal").status_code == 303
