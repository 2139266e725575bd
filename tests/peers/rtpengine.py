"""Fixtures that start a private rtpengine for a test.

    async def test_something(rtpengine):
        settings, client = rtpengine
        await client.ping()

Every instance gets its own control and DTMF-log ports (from tests/support/ports.py) and its
own block of RTP ports. Blocks lie below the kernel's ephemeral range, so they do not collide
with sockets bound to port 0, and each is held by a lock file for the instance's lifetime, so
parallel test runs on this machine (other engineers, xdist workers) never share a block.
A missing or broken rtpengine FAILS the test with the daemon's stderr; it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from callnow.telephony.rtpengine import RtpengineClient
from callnow.telephony.rtpengine_process import RtpengineProcess, RtpengineStartError
from tests.support.ports import free_port, lock_one_block

RTP_BLOCK_SIZE = 200
RTP_AREA = (20_000, 32_000)  # below Linux's default ephemeral range (32768-60999)
_LOCK_DIR = Path(tempfile.gettempdir()) / "callnow-test-rtp-ports"


@contextlib.contextmanager
def reserved_rtp_block() -> Iterator[tuple[int, int]]:
    """Hold an exclusive lock on a random free block of RTP ports until the context exits."""
    starts = list(range(RTP_AREA[0], RTP_AREA[1] - RTP_BLOCK_SIZE + 1, RTP_BLOCK_SIZE))
    locked = lock_one_block(_LOCK_DIR, starts)
    if locked is None:
        pytest.fail(f"all RTP port blocks in {RTP_AREA} are in use by other test runs")
    first, fd = locked
    try:
        yield first, first + RTP_BLOCK_SIZE - 1
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.fixture
def rtpengine_settings() -> Iterator[RtpengineSettings]:
    with reserved_rtp_block() as (port_min, port_max):
        yield RtpengineSettings(
            mode="external",
            ng_host="127.0.0.1",
            ng_port=free_port(),
            dtmf_log_port=free_port(),
            port_min=port_min,
            port_max=port_max,
            timeout_s=1.0,
        )


@pytest.fixture
def rtpengine_process(rtpengine_settings: RtpengineSettings) -> Iterator[RtpengineProcess]:
    """A running rtpengine on `rtpengine_settings`; stopped (SIGTERM, then SIGKILL) after."""
    process = RtpengineProcess(rtpengine_settings)
    try:
        process.start_sync()
    except RtpengineStartError as exc:
        pytest.fail(f"could not start rtpengine for the test:\n{exc}", pytrace=False)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def rtpengine(
    rtpengine_process: RtpengineProcess,
) -> AsyncIterator[tuple[RtpengineSettings, RtpengineClient]]:
    """(settings, connected client) for a private, running rtpengine."""
    settings = rtpengine_process.settings
    async with RtpengineClient.from_settings(settings) as client:
        yield settings, client
