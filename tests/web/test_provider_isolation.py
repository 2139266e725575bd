"""Provider API, route by route: every route needs its scope, and a token bound to Alice's
tenant never reads or changes Bob's.

As in test_isolation_by_route.py, the routes come from the app's route table: a provider route
added later is called here too, and fails `test_every_provider_route_is_known_here` until this
file says how to fill its path and body. For every route and method:

* a platform token holding every scope but the route's own gets 403 `insufficient_scope`, and one
  holding only that scope does not (the scope is read off the route's `ScopeCheck`);
* a token bound to Alice's tenant, holding every scope, calls it with Bob's identifiers and a
  valid body: it is refused (403 or 404), unless the route names nothing (a list shows only
  Alice's), and in every case no answer shows Bob's data and no row of Bob's tenant, of the
  tenant list or of the do-not-call list changes;
* an owner's Call API key, and no token at all, get 401.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from callnow.services import provisioning as service
from callnow.store import accounts, do_not_call
from callnow.store.models import DoNotCall, Tenant
from callnow.web.provider_api import PREFIX, required_scope
from tests.support.world import PASSWORD
from tests.web.test_isolation_by_route import _related_rows


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str
    params: tuple[str, ...]
    scope: str | None
    has_body: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def provider_routes(app: Any) -> list[Endpoint]:
    found = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path.startswith(PREFIX):
            params = tuple(context.param_convertors)
            for method in sorted(context.methods or ()):
                scope = required_scope(route)
                has_body = route.body_field is not None
                found.append(Endpoint(method, path, route.name, params, scope, has_body))
    return found


def _routes_of_a_fresh_app() -> list[Endpoint]:
    scratch = tempfile.mkdtemp(prefix="callnow-provider-routes-")
    app = create_app(
        Settings(
            data_dir=scratch,
            database_url=f"sqlite:///{scratch}/unused.sqlite3",
            demo_data=False,
            web=WebSettings(secret_key="routes-" + "x" * 32, public_base_url="http://testserver"),
        )
    )
    try:
        return provider_routes(app)
    finally:
        app.state.engine.dispose()


ROUTES = _routes_of_a_fresh_app()

BOB_PRIVATE = ("Bob Pty", "bob@example.com", "+61390001111", "Bob's listed reason")
BOB_LISTED_NUMBER = "+61390009999"


@dataclass
class Bobs:
    tenant_id: int
    user_id: int


# Path parameter name → Bob's value for it.
PATH_VALUES: dict[str, Callable[[Bobs], object]] = {
    "tenant_id": lambda bob: bob.tenant_id,
    "user_id": lambda bob: bob.user_id,
    "internal_number": lambda bob: "002001",
    "callnow_id": lambda bob: "bob",
    "number": lambda bob: BOB_LISTED_NUMBER,
}

# A valid body per route that takes one (by route name); where a body names an object, Bob's.
BODIES: dict[str, object] = {
    "create_tenant": {"name": "Mallory Pty"},
    "update_tenant": {"name": "Hijacked Pty"},
    "create_user": {"email": "mallory@example.com", "password": PASSWORD},
    "update_user": {"display_name": "hijacked", "is_active": False},
    "create_extension": {"internal_number": "009999", "external_number": "02 9037 9999"},
    "bulk_upsert_extensions": {
        "extensions": [{"internal_number": "002001", "external_number": "02 9037 9999"}]
    },
    "update_extension": {"external_number": "02 9037 9999", "display_name": "hijacked"},
    "create_page": {"internal_number": "002001", "callnow_id": "hijacked"},
    "update_page": {"welcome_message": "hijacked", "enabled": False},
    "set_tenant_budget": {"daily_cap_minor": 1},
    "set_extension_budget": {"daily_cap_minor": 1},
    "add_do_not_call": {"number": "0412 000 000", "reason": "hijacked"},
}

# Routes that name nothing of Bob's and may answer a bound token: a list of its own tenant.
OWN_LISTS = {("GET", f"{PREFIX}/tenants")}


def test_every_provider_route_is_known_here(world: Any) -> None:
    live = provider_routes(world.client.app)
    assert sorted(map(str, live)) == sorted(map(str, ROUTES))
    assert len(live) >= 30
    problems = []
    for endpoint in live:
        if endpoint.scope not in service.SCOPES:
            problems.append(f"{endpoint}: no ScopeCheck dependency, so no scope is needed")
        problems += [
            f"{endpoint}: add Bob's value for '{p}' to PATH_VALUES"
            for p in endpoint.params
            if p not in PATH_VALUES
        ]
        if endpoint.has_body and endpoint.name not in BODIES:
            problems.append(f"{endpoint}: add a valid body to BODIES")
    assert not problems, "\n".join(problems)


@dataclass
class Scene:
    world: Any
    bob: Bobs
    alice_token: dict[str, str]  # bound to Alice's tenant, every scope
    alice_owner_key: dict[str, str]  # Alice's own Call API key
    client: TestClient
    before: dict[str, list[tuple[Any, ...]]]


def _token(world: Any, scopes: list[str] | tuple[str, ...], tenant: str | None = None) -> dict:
    with world.sessions() as session, session.begin():
        issued = service.issue_token(session, label="t", scopes=scopes, tenant_name=tenant)
        return {"authorization": f"Bearer {issued.secret}"}


def _snapshot(world: Any, bob: Bobs) -> dict[str, list[tuple[Any, ...]]]:
    with world.sessions() as session:
        rows = _related_rows(session, bob.tenant_id)
        rows["all tenants"] = [(t.id, t.name) for t in session.scalars(select(Tenant))]
        rows["do-not-call"] = [(d.e164, d.reason) for d in session.scalars(select(DoNotCall))]
        return rows


@pytest.fixture
def scene(world: Any) -> Iterator[Scene]:
    with world.sessions() as session, session.begin():
        bob_user = accounts.by_email(session, "bob@example.com")
        bob = Bobs(tenant_id=bob_user.tenant_id, user_id=bob_user.id)
        do_not_call.add(session, BOB_LISTED_NUMBER, "Bob's listed reason")
        alice_key = accounts.issue_api_key(session, accounts.by_email(session, "alice@example.com"))
    # Bob's tenant has a budget, so the budget routes have something to leak or change.
    bob_token = _token(world, service.SCOPES, tenant="Bob Pty")
    client = TestClient(world.client.app, base_url="http://testserver")
    for path in (f"{PREFIX}/tenants/{bob.tenant_id}/budget", f"{PREFIX}/extensions/002001/budget"):
        assert client.put(path, headers=bob_token, json={"credit_limit_minor": 777}).is_success
    yield Scene(
        world=world,
        bob=bob,
        alice_token=_token(world, service.SCOPES, tenant="Alice Pty"),
        alice_owner_key={"authorization": f"Bearer {alice_key.secret}"},
        client=client,
        before=_snapshot(world, bob),
    )


def _call(scene: Scene, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    path = re.sub(r"\{(\w+)\}", lambda m: str(PATH_VALUES[m.group(1)](scene.bob)), endpoint.path)
    body = BODIES.get(endpoint.name) if endpoint.has_body else None
    return scene.client.request(endpoint.method, path, headers=headers, json=body)


@pytest.mark.parametrize("endpoint", ROUTES, ids=str)
def test_alices_token_cannot_reach_bobs_tenant_through(scene: Scene, endpoint: Endpoint) -> None:
    response = _call(scene, endpoint, scene.alice_token)
    assert response.status_code < 500, response.text
    if (endpoint.method, endpoint.path) not in OWN_LISTS:
        assert response.status_code in (403, 404), (
            f"{endpoint} with Bob's identifiers answered {response.status_code}: "
            f"{response.text[:300]}"
        )
        assert response.headers["content-type"].startswith("application/problem+json")
    leaked = [m for m in BOB_PRIVATE if m in response.text]
    assert not leaked, f"{endpoint} showed Bob's {leaked}"
    assert _snapshot(scene.world, scene.bob) == scene.before, f"{endpoint} changed Bob's rows"


@pytest.mark.parametrize("endpoint", ROUTES, ids=str)
def test_each_route_needs_its_own_scope(scene: Scene, endpoint: Endpoint) -> None:
    assert endpoint.scope is not None
    others = [s for s in service.SCOPES if s != endpoint.scope]
    refused = _call(scene, endpoint, _token(scene.world, others))
    assert refused.status_code == 403, f"{endpoint} without {endpoint.scope}: {refused.text}"
    assert refused.json()["code"] == "insufficient_scope"
    assert _snapshot(scene.world, scene.bob) == scene.before
    allowed = _call(scene, endpoint, _token(scene.world, [endpoint.scope]))
    assert allowed.status_code not in (401, 403), (
        f"{endpoint} with {endpoint.scope}: {allowed.text}"
    )
    assert allowed.status_code < 500


def test_no_token_and_an_owners_call_api_key_get_401_everywhere(scene: Scene) -> None:
    for endpoint in ROUTES:
        for headers in ({}, scene.alice_owner_key):
            response = _call(scene, endpoint, headers)
            assert response.status_code == 401, f"{endpoint}: {response.status_code}"
            assert response.json()["code"] == "invalid_token"
    assert _snapshot(scene.world, scene.bob) == scene.before


def test_bobs_identifiers_are_real(scene: Scene) -> None:
    """With a token of Bob's tenant the same identifiers work, so the refusals above come from
    the tenant check, not from typos here."""
    bob = _token(scene.world, ["tenants:read"], tenant="Bob Pty")
    for path in (
        f"/tenants/{scene.bob.tenant_id}",
        f"/users/{scene.bob.user_id}",
        "/extensions/002001",
        "/pages/bob",
        f"/tenants/{scene.bob.tenant_id}/budget",
    ):
        response = scene.client.get(PREFIX + path, headers=bob)
        assert response.status_code == 200, (path, response.text)
    platform = _token(scene.world, ["do_not_call:read"])
    listed = scene.client.get(f"{PREFIX}/do-not-call", headers=platform).json()
    assert BOB_LISTED_NUMBER in [e["number"] for e in listed]
