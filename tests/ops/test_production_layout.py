"""The production layout in ops/: systemd units that `systemd-analyze verify` accepts and whose
commands are real `callnow` commands, and example settings files that load."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callnow.cli import app
from callnow.config import Settings

OPS = Path(__file__).resolve().parents[2] / "ops"
UNITS = sorted((OPS / "systemd").glob("*.service"))
INSTALLED_CALLNOW = "/opt/callnow/.venv/bin/callnow"
CONFIGS = sorted((OPS / "config").glob("*.toml"))


def _exec_start(unit: Path) -> list[str]:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(unit)
    assert parser.has_section("Unit") and parser.has_section("Service"), unit
    assert parser.has_section("Install"), unit
    return shlex.split(parser["Service"]["ExecStart"])


def test_there_are_units_for_migrations_web_and_engines() -> None:
    names = {u.name for u in UNITS}
    assert {"callnow-migrate.service", "callnow-web.service", "callnow-engine@.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_a_unit_runs_a_real_callnow_command_with_its_config(unit: Path) -> None:
    argv = _exec_start(unit)
    assert argv[0] == INSTALLED_CALLNOW
    assert "--config" in argv
    command = [a for a in argv[1:] if not a.startswith("/")]
    command = command[: command.index("--config")]
    # The command exists and takes --config: its help answers.
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--config" in result.output


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verifies_the_unit(unit: Path, tmp_path: Path) -> None:
    """Verified as installed, with the program path pointed at this checkout's `callnow` (a
    verify of a command that does not exist fails) and the instance name filled in."""
    callnow = Path(sys.executable).parent / "callnow"
    assert callnow.is_file(), callnow
    text = unit.read_text().replace(INSTALLED_CALLNOW, str(callnow))
    name = unit.name.replace("@.service", "@1.service")
    (tmp_path / unit.name).write_text(text)
    if name != unit.name:
        (tmp_path / name).symlink_to(tmp_path / unit.name)
    for other in UNITS:  # the units it names (After=, Wants=) are known too
        if not (tmp_path / other.name).exists():
            (tmp_path / other.name).write_text(
                other.read_text().replace(INSTALLED_CALLNOW, str(callnow))
            )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "callnow" in line.lower()
    ]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_the_example_settings_load(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("CALLNOW_")]:
        monkeypatch.delenv(name)
    settings = Settings.load(config)
    assert not settings.demo_data
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.abuse.storage_url.startswith("redis://")


def test_a_web_host_runs_no_engine_and_an_engine_host_has_its_own_address() -> None:
    web = Settings.load(OPS / "config" / "web.toml")
    engine = Settings.load(OPS / "config" / "engine.toml")
    assert web.engine.enabled is False
    assert engine.sip.listen_host == engine.rtpengine.ng_host != "127.0.0.1"
    assert web.database_url == engine.database_url  # one shared database
