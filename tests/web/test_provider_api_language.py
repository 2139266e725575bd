"""A provider creates an owner in their language through the provider API; an unknown language
is refused with a stable code, in English like every API answer."""

from __future__ import annotations

from tests.support.world import PASSWORD
from tests.web.test_provider_api import API, bearer, issue, tenant_id


def test_an_owner_is_created_and_changed_with_a_language_and_unknown_codes_are_refused(world):
    client = world.client
    writer = bearer(issue(world, ["tenants:read", "tenants:write"]))
    alice = tenant_id(world, "Alice Pty")
    made = client.post(
        f"{API}/tenants/{alice}/users",
        headers=writer,
        json={"email": "pierre@alice.test", "password": PASSWORD, "language": "fr"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["language"] == "fr"

    refused = client.post(
        f"{API}/tenants/{alice}/users",
        headers=writer,
        json={"email": "kirk@alice.test", "password": PASSWORD, "language": "tlh"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_language"
    assert "en, de, fr" in refused.json()["detail"]

    user_id = made.json()["id"]
    changed = client.patch(f"{API}/users/{user_id}", headers=writer, json={"language": "ar"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["language"] == "ar"
    bad = client.patch(f"{API}/users/{user_id}", headers=writer, json={"language": "xx"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_language")
    # A new owner without a language speaks English, the default.
    plain = client.post(
        f"{API}/tenants/{alice}/users",
        headers=writer,
        json={"email": "plain@alice.test", "password": PASSWORD},
    )
    assert plain.json()["language"] == "en"
