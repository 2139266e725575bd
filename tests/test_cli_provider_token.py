"""`callnow admin provider-token create|list|revoke`: the operator hands a provider its token."""

import pytest

from callnow import logs
from callnow.config import Settings
from callnow.store import provider_tokens
from callnow.store.db import make_engine, make_session_factory
from tests.test_cli import run  # noqa: F401  # the fixture: the CLI on a migrated SQLite file


@pytest.fixture(autouse=True)
def _logs_to_this_tests_stderr() -> None:
    # A `serve` test run before this one leaves the log handler on its runner's closed stream.
    logs.configure(level="info")


def _secret(output: str) -> str:
    [secret] = [line for line in output.splitlines() if line.startswith("cnp_")]
    return secret


def test_a_token_is_created_listed_and_revoked(run, monkeypatch):  # noqa: F811
    assert run("admin", "create-tenant", "Acme").exit_code == 0
    created = run(
        "admin", "provider-token", "create", "--scope", "tenants:read",
        "--scope", "pages:write", "--tenant", "Acme", "--label", "pbx sync",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = _secret(created.output)
    token_id = secret.split("_")[1]
    assert secret.startswith("cnp_")
    listed = run("admin", "provider-token", "list").output
    assert f"{token_id}\tactive\tpages:write,tenants:read\tAcme\tpbx sync\tnever" in listed
    assert secret not in listed

    engine = make_engine(Settings.load(None).effective_database_url)
    with make_session_factory(engine)() as session:
        token = provider_tokens.presented(session, secret)
        assert token is not None and secret not in token.secret_hash  # only the hash is kept
    engine.dispose()

    assert run("admin", "provider-token", "revoke", token_id).exit_code == 0
    assert f"{token_id}\trevoked" in run("admin", "provider-token", "list").output
    assert run("admin", "provider-token", "revoke", "nope").exit_code == 1


def test_unknown_scopes_and_tenants_are_refused(run):  # noqa: F811
    bad_scope = run("admin", "provider-token", "create", "--scope", "tenants:everything")
    assert bad_scope.exit_code == 1 and "Scopes are some of" in bad_scope.output
    no_tenant = run("admin", "provider-token", "create", "--scope", "tenants:read", "--tenant", "X")
    assert no_tenant.exit_code == 1 and "No tenant named 'X'" in no_tenant.output
    assert "\t" not in run("admin", "provider-token", "list").stdout  # no token was made
