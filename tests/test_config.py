"""Settings: where values come from, and what is refused at load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callnow.config import Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callnow.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_applies_defaults_then_the_file_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    monkeypatch.setenv("CALLNOW_WEB__PORT", "8081")
    config = write(tmp_path, '[web]\nport = 9000\nhost = "127.0.0.2"\n[sip]\nlisten_port = 5071\n')
    before = dict(os.environ)
    settings = Settings.load(config)
    assert os.environ == before  # the file is passed along, not through the environment
    assert settings.web.port == 8081  # the environment wins over the file
    assert settings.web.host == "127.0.0.2"  # the file wins over the default
    assert settings.sip.listen_port == 5071
    assert settings.web.max_body_bytes == 16_384  # the default where neither says anything


def test_load_without_a_path_reads_the_file_callnow_config_names(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLNOW_CONFIG", str(write(tmp_path, "[web]\nport = 9001\n")))
    assert Settings.load().web.port == 9001
    assert Settings().web.port == 8000  # a plain Settings() reads no file


def test_load_refuses_a_file_that_is_not_there(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    with pytest.raises(FileNotFoundError, match="not a file"):
        Settings.load(tmp_path / "missing.toml")
