"""The platform admin: only platform admins get in; what they save passes the domain's checks."""

from sqlalchemy import select

from callnow.store import provisioning
from callnow.store.models import Profile
from tests.support.world import PASSWORD
from tests.web.helpers import form_token


def admin_login(world, email, password=PASSWORD, client=None):
    client = client or world.client
    page = client.get("/admin/login")
    token = form_token(page.text, "csrf_token")
    return client.post(
        "/admin/login", data={"username": email, "password": password, "csrf_token": token}
    )


def admin_form_token(world, path):
    return form_token(world.client.get(path).text, "csrf_token")


def make_admin(world):
    with world.sessions() as session, session.begin():
        provisioning.create_user(session, "root@example.com", PASSWORD, role="platform_admin")


def test_an_owner_cannot_log_in_to_the_admin(world):
    response = admin_login(world, "alice@example.com")
    assert response.status_code == 400
    assert world.client.get("/admin/tenant/list").status_code in (302, 303)


def test_a_platform_admin_sees_tenants(world):
    make_admin(world)
    assert admin_login(world, "root@example.com").status_code in (302, 303)
    page = world.client.get("/admin/tenant/list")
    assert page.status_code == 200
    assert "Alice Pty" in page.text and "Bob Pty" in page.text


def test_the_admin_normalises_a_callnow_id_and_refuses_a_reserved_one(world):
    make_admin(world)
    admin_login(world, "root@example.com")
    with world.sessions() as session:
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "alice")).one()
        profile_id, extension_id = profile.id, profile.extension_id
    form = {
        "extension": str(extension_id),
        "callnow_id": "Alice.Two",
        "enabled": "y",
        "confirmation_required": "y",
        "welcome_message": "",
        "csrf_token": admin_form_token(world, f"/admin/profile/edit/{profile_id}"),
    }
    saved = world.client.post(f"/admin/profile/edit/{profile_id}", data=form)
    assert saved.status_code in (302, 303), saved.text[:500]
    with world.sessions() as session:
        assert session.get(Profile, profile_id).callnow_id == "alice.two"
    # Renamed in the admin as anywhere else: the old address keeps leading to the page.
    assert world.client.get("/callnow/alice").headers["location"] == "/callnow/alice.two"
    form["callnow_id"] = "admin"
    refused = world.client.post(f"/admin/profile/edit/{profile_id}", data=form)
    assert refused.status_code == 400
    with world.sessions() as session:
        assert session.get(Profile, profile_id).callnow_id == "alice.two"


def test_admin_changes_are_written_to_the_audit_log(world):
    from callnow.store import audit

    make_admin(world)
    admin_login(world, "root@example.com")
    with world.sessions() as session:
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one()
    form = {
        "extension": str(profile.extension_id),
        "callnow_id": "bob.b",
        "enabled": "y",
        "welcome_message": "",
        "csrf_token": admin_form_token(world, f"/admin/profile/edit/{profile.id}"),
    }
    world.client.post(f"/admin/profile/edit/{profile.id}", data=form)
    with world.sessions() as session:
        [entry] = [e for e in audit.recent(session) if e.action != "admin.login"]
        assert (entry.action, entry.actor) == ("profiles.update", "root@example.com (admin)")
        assert entry.details["callnow_id"] == "bob.b"


def test_the_admin_gives_a_callnow_id_only_where_the_cli_would(world):
    """The admin allocates through the same rule as `callnow admin enable-callnow`."""
    from callnow.store.models import Tenant

    make_admin(world)
    admin_login(world, "root@example.com")
    with world.sessions() as session, session.begin():
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one()
        session.get(Tenant, profile.extension.tenant_id).call_api_access = False
        profile_id, extension_id = profile.id, profile.extension_id
    form = {
        "extension": str(extension_id),
        "callnow_id": "bob.b",
        "enabled": "y",
        "welcome_message": "",
        "csrf_token": admin_form_token(world, f"/admin/profile/edit/{profile_id}"),
    }
    refused = world.client.post(f"/admin/profile/edit/{profile_id}", data=form)
    assert refused.status_code == 400
    assert "Call API access" in refused.text
    with world.sessions() as session:
        assert session.get(Profile, profile_id).callnow_id == "bob"
