"""Settings: where values come from, and what is refused at load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from callnow.config import RtpengineSettings, Settings, SipSettings, WebSettings


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


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CALLNOW_ABUSE__CAPTCHA_AUTO_ON", "banana"),
        ("CALLNOW_ABUSE__SPIKE_CAPTCHA", "banana"),
        ("CALLNOW_ABUSE__PER_SOURCE", "10/minute;often"),
        ("CALLNOW_ABUSE__PER_NUMBER", "0/day"),
    ],
)
def test_every_rate_limit_is_checked_at_load(monkeypatch, key, value):
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    monkeypatch.setenv(key, value)
    field = key.removeprefix("CALLNOW_ABUSE__").lower()
    with pytest.raises(ValidationError) as refused:
        Settings.load()
    assert f"abuse.{field}" in str(refused.value)
    assert value in str(refused.value)


def test_several_windows_are_accepted_for_the_page_limits(monkeypatch):
    monkeypatch.setenv("CALLNOW_ABUSE__SPIKE_CAPTCHA", "100/10 minutes;300/hour")
    monkeypatch.setenv("CALLNOW_ABUSE__CAPTCHA_AUTO_ON", "20/10 minutes")
    assert Settings().abuse.spike_captcha == "100/10 minutes;300/hour"


def test_an_empty_rtp_port_range_is_refused():
    with pytest.raises(ValidationError, match="port_min 36000 is above port_max 35000"):
        RtpengineSettings(port_min=36000, port_max=35000)


def test_rtpengine_cannot_be_off():
    # Every callback plays prompts and bridges media through rtpengine.
    with pytest.raises(ValidationError, match="spawn"):
        RtpengineSettings(mode="off")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"sip": SipSettings(listen_port=22299)},
            "sip.listen_port and rtpengine.dtmf_log_port are both 22299 on 127.0.0.1",
        ),
        (
            {"rtpengine": RtpengineSettings(ng_port=5070)},
            "sip.listen_port and rtpengine.ng_port are both 5070",
        ),
        (
            {"rtpengine": RtpengineSettings(ng_port=22299)},
            "rtpengine.ng_port and rtpengine.dtmf_log_port are both 22299",
        ),
        (
            {"sip": SipSettings(listen_host="0.0.0.0", listen_port=22230)},
            "sip.listen_port and rtpengine.ng_port are both 22230 on 0.0.0.0",
        ),
    ],
)
def test_udp_ports_on_one_host_must_differ(changes, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**changes)


def test_the_same_udp_port_on_different_hosts_is_allowed():
    settings = Settings(
        sip=SipSettings(listen_host="127.0.0.2", listen_port=22299),
        rtpengine=RtpengineSettings(ng_host="127.0.0.1"),
    )
    assert settings.sip.listen_port == settings.rtpengine.dtmf_log_port


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="Australia/Sidney"):
        Settings(default_timezone="Australia/Sidney")


@pytest.mark.parametrize(
    ("database_url", "configured", "threads", "batch"),
    [
        ("", 0, 2, 16),  # the embedded SQLite file: one writer at a time, one commit for many
        ("sqlite:///callnow.sqlite3", 0, 2, 16),
        ("postgresql+psycopg://callnow@db/callnow", 0, 8, 1),
        ("sqlite:///callnow.sqlite3", 5, 5, 5),
        ("postgresql+psycopg://callnow@db/callnow", 3, 3, 3),
    ],
)
def test_the_public_pages_threads_and_shared_transactions_default_by_database(
    database_url, configured, threads, batch
):
    web = WebSettings(public_threads=configured, public_batch=configured)
    settings = Settings(database_url=database_url, web=web)
    assert (settings.public_threads, settings.public_batch) == (threads, batch)
