"""The provider API as a provider's provisioning system uses it: two tokens with different
scopes, tenants to pages end to end, the bulk sync of a PBX's extensions (idempotent, with a dry
run that changes nothing), budgets, the do-not-call list, revocation and the log of uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callnow.services import provisioning as service
from callnow.store import accounts, provider_tokens
from callnow.store.models import AuditEntry, Extension
from callnow.store.provider_models import ProviderTokenUse
from tests.support.world import PASSWORD

API = "/api/provider/v1"
ALL_SCOPES = service.SCOPES


def issue(world: Any, scopes: tuple[str, ...] | list[str], tenant: str | None = None) -> str:
    with world.sessions() as session, session.begin():
        issued = service.issue_token(session, label="test", scopes=scopes, tenant_name=tenant)
        return issued.secret


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def tenant_id(world: Any, name: str) -> int:
    client = world.client
    reader = bearer(issue(world, ["tenants:read"]))
    found = [t for t in client.get(f"{API}/tenants", headers=reader).json() if t["name"] == name]
    return int(found[0]["id"])


def test_a_reader_reads_and_a_writer_writes(world):
    client = world.client
    reader = bearer(issue(world, ["tenants:read"]))
    writer = bearer(issue(world, ["tenants:read", "tenants:write", "pages:write"]))
    made = client.post(f"{API}/tenants", headers=writer, json={"name": "Acme", "region": "au"})
    assert made.status_code == 201, made.text
    acme = made.json()
    assert acme["region"] == "AU" and acme["call_api_access"] is True
    refused = client.post(f"{API}/tenants", headers=reader, json={"name": "Nope"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "insufficient_scope"
    assert [t["name"] for t in client.get(f"{API}/tenants", headers=reader).json()] == [
        "Alice Pty",
        "Bob Pty",
        "Acme",
    ]

    user = client.post(
        f"{API}/tenants/{acme['id']}/users",
        headers=writer,
        json={"email": "Owner@Acme.test", "password": PASSWORD, "display_name": "Olive"},
    )
    assert user.status_code == 201, user.text
    assert user.json()["email"] == "owner@acme.test"
    extension = client.post(
        f"{API}/tenants/{acme['id']}/extensions",
        headers=writer,
        json={
            "internal_number": "003001",
            "external_number": "02 9037 4444",
            "owner_email": "owner@acme.test",
        },
    )
    assert extension.status_code == 201, extension.text
    assert extension.json()["external_number"] == "+61290374444"
    page = client.post(
        f"{API}/pages",
        headers=writer,
        json={
            "internal_number": "003001",
            "callnow_id": "Acme.Sales",
            "welcome_message": "Hello from Acme",
            "image_validation": False,
        },
    )
    assert page.status_code == 201, page.text
    assert page.json()["callnow_id"] == "acme.sales"
    assert client.get("/callnow/acme.sales").status_code == 200

    suspended = client.post(f"{API}/pages/acme.sales/suspend", headers=writer)
    assert suspended.json()["suspended"] is True
    assert client.get("/callnow/acme.sales").status_code == 404
    client.post(f"{API}/pages/acme.sales/resume", headers=writer)
    assert client.get("/callnow/acme.sales").status_code == 200
    client.post(f"{API}/tenants/{acme['id']}/suspend", headers=writer)
    assert client.get("/callnow/acme.sales").status_code == 404
    client.post(f"{API}/tenants/{acme['id']}/resume", headers=writer)
    assert client.get("/callnow/acme.sales").status_code == 200

    renamed = client.patch(f"{API}/pages/acme.sales", headers=writer, json={"callnow_id": "bob"})
    assert renamed.status_code == 409 and renamed.json()["code"] == "callnow_id_taken"
    assert client.delete(f"{API}/pages/acme.sales", headers=writer).status_code == 204
    assert client.delete(f"{API}/extensions/003001", headers=writer).status_code == 204
    users = client.get(f"{API}/tenants/{acme['id']}/users", headers=reader).json()
    assert client.delete(f"{API}/users/{users[0]['id']}", headers=writer).status_code == 204
    # Only a platform token deletes tenants: this one is one.
    assert client.delete(f"{API}/tenants/{acme['id']}", headers=writer).status_code == 204
    assert client.get(f"{API}/tenants/{acme['id']}", headers=reader).status_code == 404


def test_the_same_checks_as_the_cli_and_the_portal(world):
    client = world.client
    writer = bearer(issue(world, ALL_SCOPES))
    alice = tenant_id(world, "Alice Pty")
    cases = [
        ("post", f"{API}/tenants", {"name": "Alice Pty"}, 409, "tenant_exists"),
        ("post", f"{API}/tenants", {"name": "X", "timezone": "Mars/Base"}, 422, "invalid_tenant"),
        (
            "post",
            f"{API}/tenants/{alice}/extensions",
            {"internal_number": "12a", "external_number": "02 9037 4444"},
            422,
            "invalid_extension",
        ),
        (
            "post",
            f"{API}/tenants/{alice}/extensions",
            {"internal_number": "001002", "external_number": "02 9037 4444"},
            409,
            "extension_exists",
        ),
        (
            "post",
            f"{API}/tenants/{alice}/users",
            {"email": "x@alice.test", "password": "short"},
            422,
            "invalid_user",
        ),
        (
            "post",
            f"{API}/tenants/{alice}/users",
            {"email": "x@alice.test", "password": PASSWORD, "role": "platform_admin"},
            422,
            "invalid_request",
        ),
        ("patch", f"{API}/pages/alice", {"callnow_id": "admin"}, 422, "invalid_page"),
        ("patch", f"{API}/pages/alice", {"windows": [{"weekday": 9}]}, 422, "invalid_request"),
        ("put", f"{API}/tenants/{alice}/budget", {"daily_cap_minor": -1}, 422, "invalid_request"),
        ("post", f"{API}/do-not-call", {"number": "not a number"}, 422, "invalid_number"),
        ("post", f"{API}/tenants", {"name": "Y", "unknown": 1}, 422, "invalid_request"),
    ]
    for method, url, body, status, code in cases:
        answer = client.request(method.upper(), url, headers=writer, json=body)
        assert answer.status_code == status, (url, body, answer.text)
        assert answer.json()["code"] == code, (url, body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    broken = client.post(
        f"{API}/tenants", headers={**writer, "content-type": "application/json"}, content="{"
    )
    assert broken.status_code == 400 and broken.json()["code"] == "malformed_json"
    # A page with history is suspended, not deleted.
    page = client.get(f"{API}/pages/alice", headers=writer).json()
    assert page["internal_number"] == "001002"


def _pbx_list(count: int, external: str = "02 9037 {n:04d}") -> list[dict[str, str]]:
    return [
        {
            "internal_number": f"0050{n:02d}",
            "external_number": external.format(n=5000 + n),
            "display_name": f"Desk {n}",
        }
        for n in range(count)
    ]


def _alice_extensions(world: Any) -> list[tuple[str, str, str]]:
    with world.sessions() as session:
        rows = session.scalars(select(Extension).order_by(Extension.internal_number))
        return [(e.internal_number, e.external_number, e.display_name) for e in rows]


def test_bulk_upsert_is_idempotent_and_its_dry_run_changes_nothing(world):
    client = world.client
    writer = bearer(issue(world, ["tenants:write", "tenants:read"]))
    alice = tenant_id(world, "Alice Pty")
    url = f"{API}/tenants/{alice}/extensions/bulk"
    pbx = _pbx_list(5)
    before = _alice_extensions(world)

    dry = client.post(f"{url}?dry_run=true", headers=writer, json={"extensions": pbx})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and len(dry.json()["created"]) == 5
    assert _alice_extensions(world) == before

    first = client.post(url, headers=writer, json={"extensions": pbx}).json()
    assert sorted(first["created"]) == [p["internal_number"] for p in pbx]
    after_first = _alice_extensions(world)
    second = client.post(url, headers=writer, json={"extensions": pbx}).json()
    assert second["created"] == [] and second["updated"] == []
    assert sorted(second["unchanged"]) == sorted(first["created"])
    assert _alice_extensions(world) == after_first

    pbx[0]["display_name"] = "Reception"
    dry_change = client.post(f"{url}?dry_run=true", headers=writer, json={"extensions": pbx})
    assert dry_change.json()["updated"] == ["005000"]
    assert dry_change.json()["changes"]["005000"]["display_name"] == ["Desk 0", "Reception"]
    assert _alice_extensions(world) == after_first
    applied = client.post(url, headers=writer, json={"extensions": pbx}).json()
    assert applied["updated"] == ["005000"] and len(applied["unchanged"]) == 4
    synced = _alice_extensions(world)

    # Bob's extension number in Alice's list: the whole batch is refused, nothing is written.
    hostile = [*_pbx_list(2), {"internal_number": "002001", "external_number": "02 9037 1111"}]
    refused = client.post(url, headers=writer, json={"extensions": hostile})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_extensions"
    too_many = client.post(url, headers=writer, json={"extensions": _pbx_list(101)})
    assert too_many.status_code == 422 and too_many.json()["code"] == "invalid_request"
    assert _alice_extensions(world) == synced  # neither refused batch wrote anything
    with world.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("provider.extensions.bulk_upsert") == 2  # the two runs that changed


def test_budgets_and_the_do_not_call_list(world):
    client = world.client
    writer = bearer(issue(world, ALL_SCOPES))
    alice = tenant_id(world, "Alice Pty")
    set_limits = client.put(
        f"{API}/tenants/{alice}/budget", headers=writer, json={"daily_cap_minor": 2000}
    )
    assert set_limits.status_code == 200, set_limits.text
    assert set_limits.json()["daily_cap_minor"] == 2000
    client.put(
        f"{API}/extensions/001002/budget", headers=writer, json={"prepaid_balance_minor": 500}
    )
    ext = client.get(f"{API}/extensions/001002/budget", headers=writer).json()
    assert ext["prepaid_balance_minor"] == 500 and ext["balance_set_at"]
    off = client.put(
        f"{API}/tenants/{alice}/budget", headers=writer, json={"daily_cap_minor": None}
    )
    assert off.json()["daily_cap_minor"] is None

    added = client.post(f"{API}/do-not-call", headers=writer, json={"number": "0412 345 678"})
    assert added.status_code == 201 and added.json()["number"] == "+61412345678"
    again = client.post(f"{API}/do-not-call", headers=writer, json={"number": "+61412345678"})
    assert again.status_code == 200
    listed = client.get(f"{API}/do-not-call", headers=writer).json()
    assert [e["number"] for e in listed] == ["+61412345678"]
    assert client.delete(f"{API}/do-not-call/+61412345678", headers=writer).status_code == 204
    assert client.delete(f"{API}/do-not-call/+61412345678", headers=writer).status_code == 404

    bound = bearer(issue(world, ALL_SCOPES, tenant="Alice Pty"))
    platform_only = client.get(f"{API}/do-not-call", headers=bound)
    assert platform_only.status_code == 403
    assert platform_only.json()["code"] == "platform_token_required"


def test_a_revoked_token_gets_401_and_every_use_is_logged(world):
    client = world.client
    secret = issue(world, ["tenants:read"])
    assert client.get(f"{API}/tenants", headers=bearer(secret)).status_code == 200
    assert (
        client.post(f"{API}/tenants", headers=bearer(secret), json={"name": "Z"}).status_code == 403
    )
    token_id = secret.split("_")[1]
    with world.sessions() as session, session.begin():
        service.revoke_token(session, token_id)
    revoked = client.get(f"{API}/tenants", headers=bearer(secret))
    assert revoked.status_code == 401 and revoked.json()["code"] == "invalid_token"
    assert revoked.headers["www-authenticate"] == "Bearer"
    with world.sessions() as session:
        token = provider_tokens.by_token_id(session, token_id)
        assert token is not None and token.secret_hash not in secret  # hashed at rest
        uses = session.scalars(
            select(ProviderTokenUse).where(ProviderTokenUse.token_id == token.id)
        ).all()
        assert [(u.method, u.route, u.status) for u in uses] == [
            ("GET", f"{API}/tenants", 200),
            ("POST", f"{API}/tenants", 403),
            ("GET", f"{API}/tenants", 401),
        ]
    for wrong in ("", "Bearer", "Bearer cnp_nope_nope", f"Basic {secret}", "Bearer " + "x" * 400):
        answer = client.get(f"{API}/tenants", headers={"authorization": wrong})
        assert answer.status_code == 401, wrong


def test_the_openapi_document_tags_and_scopes_every_provider_route(world):
    document = world.client.get("/api/v1/openapi.json").json()
    operations = [
        (path, op)
        for path, item in document["paths"].items()
        if path.startswith(API)
        for op in item.values()
    ]
    assert len(operations) >= 30
    for path, op in operations:
        assert op["tags"] == ["Provider API v1"], path
        assert op["x-required-scope"] in ALL_SCOPES, path
        assert "application/problem+json" in op["responses"]["401"]["content"], path


def test_a_suspended_tenant_refuses_new_requests_from_the_owners_call_api(world):
    client = world.client
    writer = bearer(issue(world, ["tenants:write"]))
    alice = tenant_id(world, "Alice Pty")
    with world.sessions() as session, session.begin():
        owner = accounts.by_email(session, "alice@example.com")
        key = bearer(accounts.issue_api_key(session, owner).secret)
    assert client.post(f"{API}/tenants/{alice}/suspend", headers=writer).status_code == 200
    asked = client.post(
        "/api/v1/profiles/alice/requests",
        headers=key,
        json={"name": "Mary", "number": "02 9037 1111"},
    )
    assert asked.status_code == 201, asked.text
    assert (asked.json()["decision"], asked.json()["reason"]) == ("reject", "disabled")
    client.post(f"{API}/tenants/{alice}/resume", headers=writer)
    again = client.post(
        "/api/v1/profiles/alice/requests",
        headers=key,
        json={"name": "Mary", "number": "02 9037 2222"},
    )
    assert again.json()["reason"] != "disabled"
