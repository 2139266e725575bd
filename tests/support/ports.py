"""Ports for the peers a test starts (rtpengine, SIPp, Kamailio, baresip, nginx, SMTP, `serve`).

A port picked by binding port 0 and closing the socket lies in the kernel's ephemeral range
(32768-60999 by default), so any process's outgoing socket can take it in the window before the
peer binds it: a full run once failed when rtpengine found its control port "already in use".
These ports come from below that range instead, out of a block that this test process holds by
a lock file for its whole life, so two test runs on one machine never hand out the same port.
Ports are handed out in turn, so a peer that also binds a neighbour of the port it is given
(SIPp's media port + 2, baresip's SIP port + 1) is given that port last: see tests/peers/.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path
from typing import NoReturn

# Below the ephemeral range and clear of the RTP blocks (20_000-32_000, tests/peers/rtpengine.py).
AREA = (10_000, 20_000)
BLOCK_SIZE = 500
_LOCK_DIR = Path(tempfile.gettempdir()) / "callnow-test-ports"

_lock = threading.Lock()
_block: range | None = None
_next = 0  # index into _block of the next port to try


def free_port(host: str = "127.0.0.1") -> int:
    """A port that both TCP and UDP can bind on `host` right now, from this process's block."""
    global _block, _next
    with _lock:
        if _block is None:
            _block = _reserve_block()
        block = _block
        # In turn, not lowest-first: a port handed out a moment ago may not be bound by its peer
        # yet, so it must not come round again before the rest of the block has.
        for _ in block:
            port = block[_next]
            _next = (_next + 1) % len(block)
            if _bindable(host, port):
                return port
    _fail(f"no port in this test run's block {block.start}-{block.stop - 1} is free on {host}")


def _reserve_block() -> range:
    locked = lock_one_block(_LOCK_DIR, list(range(AREA[0], AREA[1], BLOCK_SIZE)))
    if locked is None:
        _fail(f"all test port blocks in {AREA[0]}-{AREA[1] - 1} are held by other test runs")
    # Never unlocked: the lock lasts until this process exits. The descriptor is not
    # inheritable (PEP 446), so a peer left running cannot keep the block locked.
    first, _descriptor = locked
    return range(first, first + BLOCK_SIZE)


def lock_one_block(lock_dir: Path, starts: list[int]) -> tuple[int, int] | None:
    """Lock the file of one of the blocks beginning at `starts` (in `lock_dir`), so that no
    other test run on this machine takes that block: its start and the locked descriptor, or
    None when other runs hold them all. Tried in random order, so concurrent runs do not all
    contend for the first block."""
    lock_dir.mkdir(exist_ok=True)
    random.SystemRandom().shuffle(starts)
    for first in starts:
        fd = os.open(lock_dir / f"{first}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return first, fd
    return None


def _bindable(host: str, port: int) -> bool:
    # No SO_REUSEADDR: a port in TIME_WAIT or bound to the wildcard address counts as taken.
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def _fail(message: str) -> NoReturn:
    try:
        import pytest
    except ImportError:  # outside a test run
        raise RuntimeError(message) from None
    pytest.fail(message, pytrace=False)
