"""Owner isolation, route by route: Alice never reads or changes Bob's data.

Not by her session, not by her API key, not by her forms.

The routes are not listed by hand: they come from the app's route table, so a route added later
is tested (or makes this file fail until someone says how to test it). For every route:

* its audience follows from its path: `/portal…` is called with Alice's logged-in portal
  session, `/api/…` with Alice's API key, `/callnow…` anonymously, as a visitor would;
* every path parameter is filled from `PATH_PARAMETERS`, a table of "how to get Bob's value for
  this parameter name" (a public route gets Alice's page ID with Bob's secret token: a visitor
  who holds a token must not be able to use it under another page);
* every method the route allows is called, with a hostile body: Alice's valid CSRF token and
  form fields naming Bob's objects, or a valid JSON body, so that only the ownership check can
  stand between Alice and Bob's data.

A route that names one of Bob's objects in its path must refuse (401, 403, 404, or a 303 back
to the login page). Every route, refused or not, must answer without a server error, without any
of Bob's private data in the body, and must leave every database row of Bob's tenant exactly as
it was (all tables, found by following foreign keys from Bob's tenant, so new tables are covered
too).

Not here: the static files, the API docs, and the platform admin (sqladmin at `/admin`), which
an owner must not reach at all (tested at the end of this file).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from callnow.billing import ledger
from callnow.billing.deck_csv import DeckImportFailed
from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from callnow.domain.decision import Outcome
from callnow.notify import links
from callnow.store import accounts
from callnow.store import webhooks as webhook_store
from callnow.store.models import CallRequest, Profile, Tenant
from callnow.store.schema import metadata
from callnow.web import sse
from tests.billing.test_ledger import (
    JAN_1,
    MOBILE,
    NOV_20_2PM_SYDNEY,
    add_finished_call,
    deck_csv,
    import_platform_deck,
)
from tests.support.world import PASSWORD
from tests.web.helpers import form_token

# ---------------------------------------------------------------------------- Bob's private data

BOB_CALLER = "Zed Bobcaller"
BOB_CALLER_NUMBER = "03 9876 5432"
BOB_CALLER_E164 = "+61398765432"
BOB_CHARGED_CALLER = "Carl Chargedbob"
BOB_WEBHOOK_URL = "https://hooks.bob.example/private-callnow"
BOB_KEY_LABEL = "bob-private-label"
BOB_RULE_NAME = "bobsecretrule"
BOB_DECK_NAME = "Bob Pty private deck"

# What must never appear in an answer to Alice (or to an anonymous visitor). Bob's page ID,
# tokens and key IDs are left out on purpose: Alice sends those herself in these tests, and a
# 404 page or a validation error may echo what was sent.
BOB_PRIVATE_MARKERS = (
    BOB_CALLER,
    BOB_CALLER_E164,
    BOB_CALLER_NUMBER,
    BOB_CHARGED_CALLER,
    BOB_WEBHOOK_URL,
    BOB_KEY_LABEL,
    BOB_RULE_NAME,
    BOB_DECK_NAME,
)


@dataclass
class Bobs:
    """Identifiers of Bob's objects, as an attacker would put them into Alice's requests."""

    callnow_id: str
    profile_id: int
    tenant_id: int
    request_token: str
    captcha_token: str
    key_id: str
    webhook_id: int
    charge_id: int
    deck_id: int
    cancel_form_token: str
    extension_id: int


# ---------------------------------------------------------------------------- how to fill routes

ALICE_CALLNOW_ID = "alice"

# Path parameter name → how to get Bob's value for it (given the route's path). A route with a
# parameter missing here fails `test_every_route_is_known_to_this_table` with a message.
PATH_PARAMETERS: dict[str, Callable[[Bobs, str], object]] = {
    "callnow_id": lambda bob, path: bob.callnow_id,
    "token": lambda bob, path: bob.captcha_token if "/captcha/" in path else bob.request_token,
    "key_id": lambda bob, path: bob.key_id,
    "deck_id": lambda bob, path: bob.deck_id,
    "charge_id": lambda bob, path: bob.charge_id,
    "webhook_id": lambda bob, path: bob.webhook_id,
    "profile_id": lambda bob, path: bob.profile_id,
    "tenant_id": lambda bob, path: bob.tenant_id,
    # A mailed Accept/Decline link for Bob's request, as Alice could make one: without the key.
    "signed": lambda bob, path: links.sign(
        "alice-guesses-" + "k" * 30, bob.request_token, "accept", datetime(2099, 1, 1, tzinfo=UTC)
    ),
    "kind": lambda bob, path: "svg",  # the QR download's file type names nothing of Bob's
}

# Routes that may write rows of Bob's tenant when Alice calls them, by design, and which tables.
WRITES_BY_DESIGN: dict[tuple[str, str], set[str]] = {
    # Anyone may ask for a reset link for any address (the answer is the same for all); the link
    # goes only to that account's mailbox.
    ("POST", "/portal/reset"): {"password_resets", "mail_outbox"},
}

# Required query parameters → a valid value (November 2026 is when Bob's charge was answered).
QUERY_PARAMETERS: dict[str, str] = {"month": "2026-11"}

# A valid JSON body per API route that takes one (by route name): only ownership may refuse it.
API_BODIES: dict[str, object] = {
    "update_profile": {"welcome_message": "hijacked by alice", "enabled": False},
    "put_rules": [],
    "create_request": {"name": "Mallory", "number": "03 9876 0000"},
}

# Form fields naming Bob's objects, sent with Alice's valid CSRF token to every form route. The
# operations are tried one after another on routes whose path names nothing of Bob's.
FORM_OPERATIONS = ("revoke", "delete", "clear", "set", "add", "up", "down")


def hostile_form(bob: Bobs, csrf: str, op: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "op": op,
        "index": "0",
        "key_id": bob.key_id,
        "scope": "tenant",
        "tenant_id": str(bob.tenant_id),
        "url": "https://alice.example/steal",
        "callnow_id": bob.callnow_id,
        "token": bob.request_token,
        "enabled": "on",
        "welcome_message": "hijacked by alice",
        "action": "accept",
        "name_match": "contains",
        "name_value": "x",
        "email": "bob@example.com",
        "password": "not bob's password",
        "name": "Alice's deck",
        "effective_from": "2026-01-01",
        "csv_text": deck_csv("61,Australia fixed,0,0.01,60,60,0"),
        "extension_id": str(bob.extension_id),
        "daily_cap": "0.01",
        "display_name": "hijacked by alice",
    }


# Public routes whose only parameter is the page itself: Bob's public page is public by design.
# They are still called (anonymously, with the hostile form) to show they leak nothing private
# and change nothing, but any status is fine. A new public route naming only a page must be
# added here on purpose.
# The value is the address called, with Bob's page ID filled in.
PUBLIC_PAGE_ROUTES = {
    ("GET", "/callnow"): "/callnow?id={callnow_id}",
    ("HEAD", "/callnow"): "/callnow?id={callnow_id}",
    ("GET", "/callnow/{callnow_id}"): "/callnow/{callnow_id}",
    ("HEAD", "/callnow/{callnow_id}"): "/callnow/{callnow_id}",
    ("POST", "/callnow/{callnow_id}"): "/callnow/{callnow_id}",
    # The website button's script: the page's public label, colour and listed sites.
    ("GET", "/callnow/{callnow_id}/embed.js"): "/callnow/{callnow_id}/embed.js",
    ("HEAD", "/callnow/{callnow_id}/embed.js"): "/callnow/{callnow_id}/embed.js",
    # The out-of-hours page's message form: a visitor writing to Bob's page, public by design.
    ("POST", "/callnow/{callnow_id}/message"): "/callnow/{callnow_id}/message",
    # Booking a time on Bob's page: its form and the post, public by design like the page's.
    ("GET", "/callnow/{callnow_id}/book"): "/callnow/{callnow_id}/book",
    ("HEAD", "/callnow/{callnow_id}/book"): "/callnow/{callnow_id}/book",
    ("POST", "/callnow/{callnow_id}/book"): "/callnow/{callnow_id}/book",
}

# Not owner routes: files, the docs, the root's redirect, the favicon, and the platform admin
# (tested separately below).
SKIPPED_PATHS = {
    "/api/v1/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/",
    "/favicon.ico",
}
SKIPPED_MOUNTS = {
    "/static": "static files",
    "/docs-assets": "the API docs' files",
    "/admin": "platform admin, tested below",
}
# The provider API has tokens of its own: tests/web/test_provider_isolation.py checks its
# routes the same way (and that an owner's key opens none of them).
SKIPPED_PREFIXES = ("/api/provider/",)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...] = ()  # the required ones
    has_body: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class RouteTable:
    endpoints: list[Endpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def route_table(app: Any) -> RouteTable:
    """Every (method, path) of the app's route table, and what this file cannot test."""
    table = RouteTable()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        if isinstance(route, Mount):
            if path not in SKIPPED_MOUNTS:
                table.problems.append(f"mount {path}: not an owner route, or new? decide here")
            continue
        if not isinstance(route, APIRoute | Route):
            table.problems.append(f"{type(route).__name__} {path}: unknown kind of route")
            continue
        if path in SKIPPED_PATHS or path.startswith(SKIPPED_PREFIXES):
            continue
        params = tuple(context.param_convertors)
        query: tuple[str, ...] = ()
        has_body = False
        if isinstance(route, APIRoute):
            dependants = list(_all_dependants(route.dependant))
            query = tuple(
                q.alias for d in dependants for q in d.query_params if q.field_info.is_required()
            )
            has_body = any(d.body_params for d in dependants)
        for method in sorted(context.methods or ()):
            endpoint = Endpoint(method, path, str(context.name), params, query, has_body)
            table.endpoints.append(endpoint)
            table.problems.extend(problems_of(endpoint))
    return table


def _all_dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _all_dependants(sub)


def problems_of(endpoint: Endpoint) -> list[str]:
    problems = []
    for name in endpoint.path_params:
        if name not in PATH_PARAMETERS:
            problems.append(
                f"{endpoint}: path parameter '{name}' is unknown to this test. Add to"
                f" PATH_PARAMETERS in {__name__} how to get Bob's value for '{name}'."
            )
    for name in endpoint.query_params:
        if name not in QUERY_PARAMETERS:
            problems.append(
                f"{endpoint}: required query parameter '{name}': add a valid value to"
                " QUERY_PARAMETERS."
            )
    if not endpoint.path.startswith(("/portal", "/api/", "/callnow")):
        problems.append(f"{endpoint}: not /portal, /api/ or /callnow: who may call it?")
    if endpoint.path.startswith("/api/") and endpoint.has_body and endpoint.name not in API_BODIES:
        problems.append(f"{endpoint}: takes a JSON body; add a valid one to API_BODIES.")
    if (
        endpoint.path.startswith("/callnow")
        and set(endpoint.path_params) <= {"callnow_id"}
        and (endpoint.method, endpoint.path) not in PUBLIC_PAGE_ROUTES
    ):
        problems.append(
            f"{endpoint}: a public route naming only a page. If it is public by design, add it"
            " to PUBLIC_PAGE_ROUTES; otherwise give it a parameter this table can fill."
        )
    return problems


def _route_table_of_a_fresh_app() -> RouteTable:
    """The same app the `world` fixture builds, made once here to name the parametrised tests."""
    scratch = tempfile.mkdtemp(prefix="callnow-routes-")
    settings = Settings(
        data_dir=scratch,
        database_url=f"sqlite:///{scratch}/unused.sqlite3",
        demo_data=False,
        web=WebSettings(secret_key="route-table-" + "x" * 32, public_base_url="http://testserver"),
    )
    app = create_app(settings)
    try:
        return route_table(app)
    finally:
        app.state.engine.dispose()


ROUTES = _route_table_of_a_fresh_app()


# ---------------------------------------------------------------------------- Bob's rows


def _related_rows(session: Session, tenant_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that belongs to the tenant, directly or through foreign keys."""
    ids: dict[str, set[Any]] = {"tenants": {tenant_id}}
    changed = True
    while changed:
        changed = False
        # A table without foreign keys (limit counters) belongs to no tenant.
        for table in (t for t in metadata.sorted_tables if t.foreign_keys):
            [pk] = table.primary_key.columns
            for fk in table.foreign_keys:
                owners = ids.get(fk.column.table.name)
                if not owners:
                    continue
                found = set(session.execute(select(pk).where(fk.parent.in_(owners))).scalars())
                new = found - ids.setdefault(table.name, set())
                if new:
                    ids[table.name] |= new
                    changed = True
    rows = {}
    for table in metadata.sorted_tables:
        if ids.get(table.name):
            [pk] = table.primary_key.columns
            query = select(table).where(pk.in_(ids[table.name])).order_by(pk)
            rows[table.name] = [tuple(row) for row in session.execute(query)]
    return rows


def snapshot_of_bob(world: Any, bob: Bobs) -> dict[str, list[tuple[Any, ...]]]:
    with world.sessions() as session:
        return _related_rows(session, bob.tenant_id)


# ---------------------------------------------------------------------------- the world


@dataclass
class Scene:
    world: Any
    bob: Bobs
    alice_portal: TestClient  # logged in as Alice
    alice_csrf: str
    alice_api: dict[str, str]  # Alice's API key header
    anonymous: TestClient
    before: dict[str, list[tuple[Any, ...]]]


def _client(world: Any) -> TestClient:
    return TestClient(world.client.app, base_url="http://testserver", follow_redirects=False)


def _issue_key(world: Any, email: str, label: str) -> tuple[str, str]:
    with world.sessions() as session, session.begin():
        issued = accounts.issue_api_key(session, accounts.by_email(session, email), label)
        return issued.secret, issued.key.key_id


def give_bob_one_of_everything(world: Any) -> Bobs:
    """Bob's data on every kind of object the app has, made through his own API key where it can."""
    secret, key_id = _issue_key(world, "bob@example.com", BOB_KEY_LABEL)
    as_bob = {"authorization": f"Bearer {secret}"}
    api = _client(world)
    changed = api.patch(
        "/api/v1/profiles/bob",
        headers=as_bob,
        json={
            "welcome_message": "Bob's welcome",
            "windows": [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)],
        },
    )
    assert changed.status_code == 200, changed.text
    rules = [{"action": "reject", "name_match": "contains", "name_value": BOB_RULE_NAME}]
    assert api.put("/api/v1/profiles/bob/rules", headers=as_bob, json=rules).status_code == 200
    created = api.post(
        "/api/v1/profiles/bob/requests",
        headers=as_bob,
        json={"name": BOB_CALLER, "number": BOB_CALLER_NUMBER},
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    # The visitor's status page offers a cancel form while the request waits: its token is the
    # strongest thing a visitor of Bob's page could hold.
    status_page = api.get(f"/callnow/bob/requests/{token}")
    assert status_page.status_code == 200
    cancel_token = form_token(status_page.text)
    with world.sessions() as session, session.begin():
        bob_user = accounts.by_email(session, "bob@example.com")
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one()
        tenant = session.scalars(select(Tenant).where(Tenant.name == "Bob Pty")).one()
        call_request = session.scalars(select(CallRequest).where(CallRequest.token == token)).one()
        # Waiting for Bob's click on the web, so Accept/Decline would work if ownership did not
        # hold. (Where `decision` is too narrow for "confirm_web", i.e. on PostgreSQL until its
        # migration, it stays "confirm": Accept would then answer 409, which is not a refusal
        # status either, so a missing ownership check still fails the test.)
        if CallRequest.__table__.c.decision.type.length >= len(Outcome.CONFIRM_ON_WEB.value):
            call_request.decision = Outcome.CONFIRM_ON_WEB.value
        captcha = world.client.app.state.callnow.safeguards.captcha
        captcha_token = captcha.issue(profile.id, datetime.now(UTC))
        endpoint, _ = webhook_store.set_owner_url(session, bob_user, BOB_WEBHOOK_URL)
        import_platform_deck(session)
        leg = add_finished_call(
            session, "bob", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=95,
            caller=BOB_CHARGED_CALLER,
        )  # fmt: skip
        charge = ledger.post_charge_for_leg(session, leg)
        assert charge is not None
        deck = ledger.import_deck(
            session, deck_csv("61,Australia fixed,0,0.07,60,60,0"), tenant.id, BOB_DECK_NAME, JAN_1
        )
        assert not isinstance(deck, DeckImportFailed), deck
        return Bobs(
            callnow_id="bob",
            profile_id=profile.id,
            tenant_id=tenant.id,
            request_token=token,
            captcha_token=captcha_token,
            key_id=key_id,
            webhook_id=endpoint.id,
            charge_id=charge.id,
            deck_id=deck.id,
            cancel_form_token=cancel_token,
            extension_id=profile.extension_id,
        )


def log_in_as_alice(client: TestClient) -> str:
    """Log in; return the portal's CSRF token for Alice's session."""
    page = client.get("/portal/login")
    response = client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": "alice@example.com",
              "password": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 303
    return form_token(client.get("/portal/api-keys").text, "csrf")


@pytest.fixture
def scene(world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    # Event streams end quickly, so a stream Alice is allowed to open does not hang the test.
    import callnow.web as web_package

    for module in list(vars(web_package).values()):
        for name, value in list(vars(module).items()) if hasattr(module, "__dict__") else []:
            if isinstance(value, sse.StreamTiming):
                monkeypatch.setattr(module, name, sse.StreamTiming(poll_s=0.01, max_s=0.1))
    bob = give_bob_one_of_everything(world)
    alice_secret, _ = _issue_key(world, "alice@example.com", "alice's key")
    alice_portal = _client(world)
    csrf = log_in_as_alice(alice_portal)
    # Alice's credentials work for her own things, so a refusal below is about Bob, not her.
    alice_api = {"authorization": f"Bearer {alice_secret}"}
    assert alice_portal.get("/portal/profiles/alice/preferences").status_code == 200
    assert world.client.get("/api/v1/profiles/alice", headers=alice_api).status_code == 200
    yield Scene(
        world=world,
        bob=bob,
        alice_portal=alice_portal,
        alice_csrf=csrf,
        alice_api=alice_api,
        anonymous=_client(world),
        before=snapshot_of_bob(world, bob),
    )


# ---------------------------------------------------------------------------- the tests


def test_every_route_is_known_to_this_table(world: Any) -> None:
    """The app the fixture builds has exactly the routes parametrised below, and each of them
    can be filled in. A new route with a new kind of identifier fails here until it is added."""
    live = route_table(world.client.app)
    assert not live.problems, "\n".join(live.problems)
    assert sorted(map(str, live.endpoints)) == sorted(map(str, ROUTES.endpoints))
    assert len(live.endpoints) >= 40  # the table really was read (not an empty router)


def _url(endpoint: Endpoint, bob: Bobs) -> str:
    public = endpoint.path.startswith("/callnow")

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if public and name == "callnow_id":
            return ALICE_CALLNOW_ID  # Bob's secret under a page the visitor may name
        return str(PATH_PARAMETERS[name](bob, endpoint.path))

    if (endpoint.method, endpoint.path) in PUBLIC_PAGE_ROUTES:  # Bob's public page
        return PUBLIC_PAGE_ROUTES[endpoint.method, endpoint.path].format(callnow_id=bob.callnow_id)
    path = re.sub(r"\{(\w+)(?::\w+)?\}", value, endpoint.path)
    query = "&".join(f"{q}={QUERY_PARAMETERS[q]}" for q in endpoint.query_params)
    return f"{path}?{query}" if query else path


def _call(scene: Scene, endpoint: Endpoint, op: str) -> Any:
    url = _url(endpoint, scene.bob)
    if endpoint.path.startswith("/api/"):
        json_body = API_BODIES.get(endpoint.name) if endpoint.has_body else None
        return scene.anonymous.request(
            endpoint.method, url, headers=scene.alice_api, json=json_body
        )
    client = scene.alice_portal if endpoint.path.startswith("/portal") else scene.anonymous
    if endpoint.method in ("GET", "HEAD", "DELETE"):
        return client.request(endpoint.method, url)
    if client is scene.anonymous:  # the visitor's forms take few fields: only the cancel token
        return client.request(
            endpoint.method, url, data={"form_token": scene.bob.cancel_form_token}
        )
    return client.request(endpoint.method, url, data=hostile_form(scene.bob, scene.alice_csrf, op))


def _check_refused(endpoint: Endpoint, response: Any) -> None:
    if response.status_code == 303:
        assert response.headers["location"] == "/portal/login", (
            f"{endpoint} with Bob's identifiers redirected to {response.headers['location']}"
        )
        return
    assert response.status_code in (401, 403, 404), (
        f"{endpoint} with Bob's identifiers answered {response.status_code}, not a refusal:"
        f" {response.text[:300]}"
    )


@pytest.mark.parametrize("endpoint", ROUTES.endpoints, ids=str)
def test_alice_cannot_reach_bobs_data_through(scene: Scene, endpoint: Endpoint) -> None:
    if problems := problems_of(endpoint):
        pytest.fail("\n".join(problems))
    names_bobs_object = bool(endpoint.path_params) and (
        (endpoint.method, endpoint.path) not in PUBLIC_PAGE_ROUTES
    )
    writes = endpoint.method not in ("GET", "HEAD")
    api = endpoint.path.startswith("/api/")
    operations = FORM_OPERATIONS if writes and not api and not names_bobs_object else ("delete",)
    for op in operations:
        response = _call(scene, endpoint, op)
        assert response.status_code < 500, f"{endpoint} op={op}: {response.status_code}"
        if names_bobs_object:
            _check_refused(endpoint, response)
        leaked = [m for m in BOB_PRIVATE_MARKERS if m in response.text]
        assert not leaked, f"{endpoint} op={op} showed Bob's {leaked}"
        allowed = WRITES_BY_DESIGN.get((endpoint.method, endpoint.path), set())
        after = snapshot_of_bob(scene.world, scene.bob)
        assert {t: rows for t, rows in after.items() if t not in allowed} == {
            t: rows for t, rows in scene.before.items() if t not in allowed
        }, f"{endpoint} op={op} changed Bob's rows"


def test_bob_can_use_the_identifiers_alice_was_refused(scene: Scene) -> None:
    """The identifiers are real: with Bob's own session and key they work, so the refusals above
    come from ownership, not from typos in this test."""
    bob = scene.bob
    secret, _ = _issue_key(scene.world, "bob@example.com", "bob's second key")
    as_bob = {"authorization": f"Bearer {secret}"}
    client = scene.anonymous
    assert client.get(f"/api/v1/requests/{bob.request_token}", headers=as_bob).status_code == 200
    assert client.get("/api/v1/profiles/bob/rules", headers=as_bob).json()[0]["name_value"] == (
        BOB_RULE_NAME
    )
    assert client.get(f"/callnow/bob/requests/{bob.request_token}").status_code == 200
    assert client.get(f"/callnow/bob/captcha/{bob.captcha_token}.png").status_code == 200
    charges = client.get("/api/v1/billing/charges?month=2026-11", headers=as_bob).json()
    assert [c["id"] for c in charges] == [bob.charge_id]
    page = client.get("/portal/login")
    client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": "bob@example.com",
              "password": PASSWORD},
    )  # fmt: skip
    assert client.get("/portal/profiles/bob/preferences").status_code == 200
    assert BOB_CALLER in client.get("/portal/requests").text
    assert BOB_KEY_LABEL in client.get("/portal/api-keys").text
    assert BOB_WEBHOOK_URL in client.get("/portal/webhooks").text


def test_the_snapshot_notices_a_change_to_bobs_rows(scene: Scene) -> None:
    """The "unchanged" check above can fail: Bob changing his own rule shows up in it."""
    client = scene.anonymous
    secret, _ = _issue_key(scene.world, "bob@example.com", "")
    before = snapshot_of_bob(scene.world, scene.bob)
    client.put("/api/v1/profiles/bob/rules", headers={"authorization": f"Bearer {secret}"}, json=[])
    after = snapshot_of_bob(scene.world, scene.bob)
    assert before.get("rules") and not after.get("rules")


# ---------------------------------------------------------------------------- platform admin

ADMIN_PAGES = (
    "/admin/",
    "/admin/tenant/list",
    "/admin/user/list",
    "/admin/profile/list",
    "/admin/call-request/list",
    "/admin/call-leg/list",
    "/admin/charge-row/list",
    "/admin/audit-entry/list",
    "/admin/do-not-call/list",
    "/admin/budget-row/list",
)


def test_an_owners_session_gets_nothing_from_the_platform_admin(scene: Scene) -> None:
    client = scene.alice_portal  # logged in to the portal as Alice
    token = form_token(client.get("/admin/login").text, "csrf_token")
    login = client.post(
        "/admin/login",
        data={"username": "alice@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert login.status_code == 400
    pages = [*ADMIN_PAGES, f"/admin/profile/details/{scene.bob.profile_id}"]
    for path in pages:
        response = client.get(path)
        assert response.status_code in (302, 303), f"{path}: {response.status_code}"
        assert "/admin/login" in response.headers["location"]
        assert "Bob Pty" not in response.text
    edit = client.post(
        f"/admin/profile/edit/{scene.bob.profile_id}",
        data={"callnow_id": "bob.hijacked", "enabled": "y", "welcome_message": "hijacked"},
    )
    assert edit.status_code == 403  # no admin session, so no valid CSRF token either
    assert snapshot_of_bob(scene.world, scene.bob) == scene.before


def test_an_owners_api_key_gets_nothing_from_the_platform_admin(scene: Scene) -> None:
    for path in ADMIN_PAGES:
        response = scene.anonymous.get(path, headers=scene.alice_api)
        assert response.status_code in (302, 303), f"{path}: {response.status_code}"
        assert "/admin/login" in response.headers["location"]
