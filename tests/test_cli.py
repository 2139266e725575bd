"""The `callnow` command: a provider scripts provisioning with it."""

import gc
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from callnow.cli import app
from callnow.store.db import migrate
from tests.support.ports import free_port
from tests.support.world import PG_SERVER


@contextmanager
def port_taken(kind: socket.SocketKind) -> Iterator[int]:
    """A port on 127.0.0.1 that another program holds (and listens on, for TCP)."""
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def run(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("CALLNOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLNOW_DATABASE_URL", url)
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    migrate(url)  # as `callnow db upgrade` does; admin commands never migrate
    # `serve` refuses a web port in use; another program on 8000 must not fail these tests.
    monkeypatch.setenv("CALLNOW_WEB__PORT", str(free_port()))
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), env=env)

    yield invoke
    gc.unfreeze()  # `serve` freezes what exists; the test process goes on collecting it


def test_a_provider_provisions_a_tenant_owner_extension_and_page(run):
    assert run("admin", "create-tenant", "Acme", "--region", "AU").exit_code == 0
    created = run(
        "admin",
        "create-user",
        "owner@acme.test",
        "--tenant",
        "Acme",
        env={"CALLNOW_PASSWORD": "a long password"},
    )
    assert created.exit_code == 0, created.output
    ext = run(
        "admin",
        "create-extension",
        "--tenant",
        "Acme",
        "--internal",
        "003001",
        "--external",
        "(02) 9037 4444",
        "--owner",
        "owner@acme.test",
    )
    assert ext.exit_code == 0, ext.output
    assert "+61290374444" in ext.output
    enabled = run("admin", "enable-callnow", "--internal", "003001", "--id", "Acme.Sales")
    assert enabled.exit_code == 0
    assert "/callnow/acme.sales" in enabled.output


def test_enable_callnow_renames_an_existing_page_only_when_asked(run):
    run("admin", "create-tenant", "Acme")
    run(
        "admin",
        "create-extension",
        "--tenant",
        "Acme",
        "--internal",
        "003001",
        "--external",
        "0290374444",
    )
    run(
        "admin",
        "create-extension",
        "--tenant",
        "Acme",
        "--internal",
        "003002",
        "--external",
        "0290374445",
    )
    assert run("admin", "enable-callnow", "--internal", "003001", "--id", "acme").exit_code == 0
    refused = run("admin", "enable-callnow", "--internal", "003001", "--id", "acme.sales")
    assert refused.exit_code == 1
    assert "--rename" in refused.output
    again = run("admin", "enable-callnow", "--internal", "003001", "--id", "acme")
    assert again.exit_code == 0  # re-enabling under the same ID needs no flag
    renamed = run(
        "admin", "enable-callnow", "--internal", "003001", "--id", "acme.sales", "--rename"
    )
    assert renamed.exit_code == 0, renamed.output
    assert "/callnow/acme.sales" in renamed.output
    stolen = run("admin", "enable-callnow", "--internal", "003002", "--id", "acme")
    assert stolen.exit_code == 1
    assert "at least a year" in stolen.output


def test_provisioning_errors_are_plain_and_exit_non_zero(run):
    run("admin", "create-tenant", "Acme")
    duplicate = run("admin", "create-tenant", "Acme")
    assert duplicate.exit_code == 1
    assert "exists already" in duplicate.output
    bad_number = run(
        "admin",
        "create-extension",
        "--tenant",
        "Acme",
        "--internal",
        "1",
        "--external",
        "0290374444",
    )
    assert bad_number.exit_code == 1
    assert "2 to 20 digits" in bad_number.output
    reserved = run("admin", "enable-callnow", "--internal", "999", "--id", "admin")
    assert reserved.exit_code == 1


def test_callnow_needs_a_tenant_with_call_api_access(run):
    run("admin", "create-tenant", "NoApi", "--no-call-api")
    run(
        "admin",
        "create-extension",
        "--tenant",
        "NoApi",
        "--internal",
        "004001",
        "--external",
        "0290375555",
    )
    result = run("admin", "enable-callnow", "--internal", "004001", "--id", "noapi")
    assert result.exit_code == 1
    assert "Call API access" in result.output


def test_a_bad_configuration_value_is_reported_not_ignored(run):
    result = run("db", "upgrade", env={"CALLNOW_WEB__PORT": "99999"})
    assert result.exit_code == 2
    assert "port" in result.output


def test_a_config_file_that_does_not_exist_is_reported(run, tmp_path):
    result = run("db", "upgrade", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "not a file" in result.output


def test_settings_come_from_a_toml_file(run, tmp_path):
    config = tmp_path / "callnow.toml"
    config.write_text('[sip]\nowner_uri_template = "sip:nothing@host"\n')
    result = run("db", "upgrade", "--config", str(config))
    assert result.exit_code == 2
    assert "{internal}" in result.output


def test_numbers_are_kept_on_the_do_not_call_list(run):
    added = run("admin", "do-not-call", "add", "0412 345 678", "--reason", "asked")
    assert added.exit_code == 0, added.output
    assert "+61412345678 added" in added.output
    assert "+61412345678" in run("admin", "do-not-call", "list").output
    assert "removed" in run("admin", "do-not-call", "remove", "+61412345678").output
    assert run("admin", "do-not-call", "add", "not a number").exit_code == 1


def test_serve_hands_the_gil_over_quickly_before_it_starts_serving(run, monkeypatch):
    import sys

    import uvicorn

    from callnow.bootstrap import THREAD_SWITCH_INTERVAL_S

    seen: list[float] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, **kw: seen.append(sys.getswitchinterval())
    )
    default = sys.getswitchinterval()
    try:
        result = run("serve", env={"CALLNOW_ENGINE__ENABLED": "false"})
    finally:
        sys.setswitchinterval(default)
    assert result.exit_code == 0, result.output
    assert seen == [THREAD_SWITCH_INTERVAL_S]
    assert default > THREAD_SWITCH_INTERVAL_S


def test_serve_leaves_its_start_up_objects_out_of_garbage_collection(run, monkeypatch):
    import uvicorn

    frozen: list[int] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, **kw: frozen.append(gc.get_freeze_count())
    )
    assert gc.get_freeze_count() == 0
    result = run("serve", env={"CALLNOW_ENGINE__ENABLED": "false"})
    assert result.exit_code == 0, result.output
    assert frozen and frozen[0] > 0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request, tmp_path) -> Iterator[str]:
    """A database nothing has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"callnow_cli_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_admin_commands_refuse_a_schema_that_is_not_this_versions(fresh_url, tmp_path):
    env = {"CALLNOW_DATA_DIR": str(tmp_path), "CALLNOW_DATABASE_URL": fresh_url}
    runner = CliRunner(env={**env, "CALLNOW_CONFIG": None})
    for command in (["admin", "create-tenant", "Acme"], ["billing", "list-decks"]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 1
        assert "this version needs" in refused.output
        assert "run `callnow db upgrade`" in refused.output
    if fresh_url.startswith("sqlite"):
        assert not (tmp_path / "fresh.sqlite3").exists()  # not even created, let alone migrated
    assert runner.invoke(app, ["db", "status"]).exit_code == 1
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["db", "status"]).exit_code == 0
    assert runner.invoke(app, ["admin", "create-tenant", "Acme"]).exit_code == 0

    # A newer CallNow migrated it: upgrading would not help, and the message says so.
    engine = create_engine(fresh_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    newer = runner.invoke(app, ["admin", "create-tenant", "Other"])
    assert newer.exit_code == 1
    assert "at from_the_future, which this version does not know" in newer.output


def test_do_not_call_is_a_group_of_subcommands(run):
    assert run("admin", "do-not-call", "banana", "0412 345 678").exit_code == 2
    assert run("admin", "do-not-call", "add").exit_code == 2  # the number is required
    assert "was not on" in run("admin", "do-not-call", "remove", "0412 345 678").output


def test_every_command_and_option_has_help_text():
    import click
    import typer

    def walk(command: click.Command, path: str):
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    missing = []
    for path, command in walk(typer.main.get_command(app), "callnow"):
        if not (command.help or command.short_help):
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                missing.append(f"{path} {param.opts[0]}")
            if isinstance(param, click.Argument) and not getattr(param, "help", None):
                missing.append(f"{path} {param.name}")
    assert missing == []


def test_nothing_below_the_command_line_imports_it():
    from pathlib import Path

    import callnow

    package = Path(callnow.__file__).parent
    importers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.parent.name != "cli"
        and path.name != "__main__.py"
        and ("from callnow.cli" in path.read_text() or "import callnow.cli" in path.read_text())
    ]
    assert importers == []


@pytest.mark.parametrize(
    ("command", "setting", "kind", "env"),
    [
        ("serve", "web.port", socket.SOCK_STREAM, {"CALLNOW_ENGINE__ENABLED": "false"}),
        ("serve", "rtpengine.dtmf_log_port", socket.SOCK_DGRAM, {}),
        ("serve", "sip.listen_port", socket.SOCK_DGRAM, {}),
        ("engine", "rtpengine.dtmf_log_port", socket.SOCK_DGRAM, {}),
        ("engine", "rtpengine.ng_port", socket.SOCK_DGRAM, {}),
        ("serve", "metrics.port", socket.SOCK_STREAM, {"CALLNOW_METRICS__ENABLED": "true"}),
        ("engine", "metrics.engine_port", socket.SOCK_STREAM, {"CALLNOW_METRICS__ENABLED": "true"}),
    ],
)
def test_a_port_in_use_stops_the_start_with_one_line_naming_the_setting(
    run, monkeypatch, command, setting, kind, env
):
    import uvicorn

    from callnow.engine.runtime import EngineRuntime

    started: list[str] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, **kw: started.append("web"))
    monkeypatch.setattr(EngineRuntime, "start", lambda *a, **kw: started.append("engine"))
    # The other UDP ports free too, so the one taken is the only one in the way.
    for other in ("sip.listen_port", "rtpengine.ng_port", "rtpengine.dtmf_log_port"):
        variable = "CALLNOW_" + other.upper().replace(".", "__")
        monkeypatch.setenv(variable, str(free_port()))
    for other in ("metrics.port", "metrics.engine_port"):
        variable = "CALLNOW_" + other.upper().replace(".", "__")
        monkeypatch.setenv(variable, str(free_port()))
    with port_taken(kind) as port:
        variable = "CALLNOW_" + setting.upper().replace(".", "__")
        result = run(command, env={**env, variable: str(port)})
    assert result.exit_code == 1
    assert result.output.strip() == f"{setting} {port} is already in use on 127.0.0.1"
    assert started == []
