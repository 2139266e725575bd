"""schemathesis against the Call API's own OpenAPI document: no 5xx and no schema violations.

Every operation of `/api/v1/openapi.json` (the Call API and its billing part) is called with
generated inputs, valid ones and invalid ones, authenticated with Alice's API key; where an
operation names a page, half of the valid inputs use Alice's own page so that the success
responses are checked too, not only the 404s. Each response must:

* not be a server error (`not_a_server_error`),
* have a status code the document declares for that operation (`status_code_conformance`),
* have a body that matches the schema declared for that status (`response_schema_conformance`),
* have the content type the document declares (`content_type_conformance`).

Examples are bounded (60 per operation: generated, invalid, and naming Alice's own objects)
and derandomized, so a run is repeatable and short. Both database backends run (the `world`
fixture).

schemathesis's own pytest plugin (`schemathesis.pytest.from_fixture`) does not work with our
pytest (it sets `Function._nodeid`, which pytest 9 no longer has), so the operations are
parametrised here and each is driven through Hypothesis directly.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from callnow.store import accounts

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
SPEC = "/api/v1/openapi.json"
EXAMPLES_PER_MODE = 20  # × 3 strategies


def _operations() -> list[str]:
    """`METHOD /path` of every operation, read from a fresh app's document to name the tests."""
    scratch = tempfile.mkdtemp(prefix="callnow-openapi-")
    app = create_app(
        Settings(
            data_dir=scratch,
            database_url=f"sqlite:///{scratch}/unused.sqlite3",
            demo_data=False,
            web=WebSettings(secret_key="openapi-" + "x" * 32, public_base_url="http://testserver"),
        )
    )
    try:
        return [
            f"{method.upper()} {path}"
            for path, item in app.openapi()["paths"].items()
            for method in item
            # The provider API shares the document but not the owner's key: its routes are
            # checked by tests/web/test_provider_api.py and test_provider_isolation.py.
            if not path.startswith("/api/provider/")
        ]
    finally:
        app.state.engine.dispose()


OPERATIONS = _operations()
# A valid body per operation, tried besides the generated ones, so the success answers of the
# operations that create things are checked too (random text is hardly ever a phone number).
VALID_BODIES = {
    "POST /api/v1/profiles/{callnow_id}/requests": {"name": "Mary", "number": "02 9037 5678"},
}


@dataclass
class Alice:
    headers: dict[str, str]
    own: dict[str, str]  # path parameter → a value naming one of Alice's objects


@pytest.fixture
def alice(world: Any) -> Alice:
    """Alice's API key, and one request on her page, so `{token}` can name something real."""
    with world.sessions() as session, session.begin():
        issued = accounts.issue_api_key(session, accounts.by_email(session, "alice@example.com"))
    headers = {"Authorization": f"Bearer {issued.secret}"}
    created = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers=headers,
        json={"name": "Mary", "number": "02 9037 1111"},
    )
    assert created.status_code == 201, created.text
    return Alice(headers=headers, own={"callnow_id": "alice", "token": created.json()["token"]})


def _cases(operation: Any, label: str, alice: Alice) -> st.SearchStrategy[Any]:
    names = {p.name for p in operation.path_parameters}
    own = {k: v for k, v in alice.own.items() if k in names}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if own:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=own))
    if label in VALID_BODIES:
        strategies.append(
            operation.as_strategy(
                GenerationMode.POSITIVE, path_parameters=own, body=VALID_BODIES[label]
            )
        )
    return st.one_of(strategies)


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 10
    assert "POST /api/v1/profiles/{callnow_id}/requests" in OPERATIONS
    assert "GET /api/v1/billing/statement" in OPERATIONS
    assert not [op for op in OPERATIONS if not op.split(" ", 1)[1].startswith("/api/")], (
        "only the API belongs in the API's document"
    )


@pytest.mark.parametrize("label", OPERATIONS)
def test_the_call_api_keeps_its_openapi_promises(world: Any, alice: Alice, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = schemathesis.openapi.from_asgi(SPEC, world.client.app)[path][method]
    statuses: list[int] = []

    @given(case=_cases(operation, label, alice))
    @settings(
        max_examples=EXAMPLES_PER_MODE * 3,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        response = case.call(headers=alice.headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=alice.headers)

    call()
    # The key worked and the valid inputs reached the operation: a run that only ever met 401s
    # or 404s would have checked nothing but the error models.
    assert any(200 <= status < 300 for status in statuses), sorted(set(statuses))
