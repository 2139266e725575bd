"""Starting and stopping a private rtpengine daemon."""

from __future__ import annotations

import signal
import socket

import pytest

from callnow.config import RtpengineSettings
from callnow.telephony.rtpengine import RtpengineClient, RtpengineUnavailable
from callnow.telephony.rtpengine_process import (
    RtpengineProcess,
    RtpengineStartError,
    rtpengine_command,
)

pytestmark = pytest.mark.peers


def test_command_line_is_the_documented_one_without_debians_config_file() -> None:
    settings = RtpengineSettings(ng_port=4000, dtmf_log_port=4001, port_min=20000, port_max=20199)
    assert rtpengine_command(settings) == [
        "rtpengine",
        "--config-file=none",
        "--interface=127.0.0.1",
        "--listen-ng=127.0.0.1:4000",
        "--table=-1",
        "--foreground",
        "--log-stderr",
        "--log-level=5",
        "--dtmf-log-dest=127.0.0.1:4001",
        "--port-min=20000",
        "--port-max=20199",
        "--no-fallback",
        "--num-threads=4",
        "--media-num-threads=4",
    ]


async def test_async_context_manager_starts_a_daemon_that_answers_and_stops_it(
    rtpengine_settings: RtpengineSettings,
) -> None:
    # INFO, which the default NOTICE level leaves out, says it shut down (a later option wins)
    info = ["--log-level=6"]
    async with RtpengineProcess(rtpengine_settings, extra_args=info) as process:
        assert process.running
        async with RtpengineClient.from_settings(rtpengine_settings) as client:
            await client.ping()
    assert not process.running
    # SIGTERM was enough: rtpengine shuts down cleanly and reports it in its log
    assert process.stop() in (0, -signal.SIGTERM)
    assert "shutting down" in process.stderr_tail

    async with RtpengineClient.from_settings(rtpengine_settings) as client:
        client.timeout_s = 0.3
        with pytest.raises(RtpengineUnavailable):
            await client.ping()


def test_sync_use_for_fixtures(rtpengine_settings: RtpengineSettings) -> None:
    with RtpengineProcess(rtpengine_settings) as process:
        assert process.running and process.pid
    assert not process.running


async def test_a_busy_control_port_fails_with_the_daemons_own_words(
    rtpengine_settings: RtpengineSettings,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((rtpengine_settings.ng_host, 0))
        busy = rtpengine_settings.model_copy(update={"ng_port": squatter.getsockname()[1]})
        process = RtpengineProcess(busy)
        with pytest.raises(RtpengineStartError) as caught:
            await process.start()
    message = str(caught.value)
    assert "exited with status" in message
    assert "Address already in use" in message  # the stderr tail is part of the error
    assert not process.running


async def test_a_missing_executable_is_a_start_error(
    rtpengine_settings: RtpengineSettings,
) -> None:
    with pytest.raises(RtpengineStartError, match="not found on PATH"):
        await RtpengineProcess(rtpengine_settings, executable="rtpengine-not-installed").start()


async def test_a_daemon_that_never_answers_times_out_and_is_killed(
    rtpengine_settings: RtpengineSettings,
) -> None:
    # `sleep` stands in for a daemon that hangs before listening
    process = RtpengineProcess(rtpengine_settings, executable="sleep", start_timeout_s=0.5)
    process.command = lambda: ["sleep", "30"]  # type: ignore[method-assign]  # stand-in daemon
    with pytest.raises(RtpengineStartError, match=r"did not answer ping within 0\.5s"):
        await process.start()
    assert not process.running


async def test_an_empty_port_range_is_refused_before_starting(
    rtpengine_settings: RtpengineSettings,
) -> None:
    # rtpengine itself would start and then fail every offer
    backwards = rtpengine_settings.model_copy(update={"port_min": 30000, "port_max": 29999})
    with pytest.raises(RtpengineStartError, match="is empty"):
        await RtpengineProcess(backwards).start()
