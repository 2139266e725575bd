"""tests/support/ports.py: ports for peers come from a locked block below the ephemeral range."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import AREA, BLOCK_SIZE, free_port

ROOT = Path(__file__).resolve().parents[2]


def block_of(port: int) -> int:
    return (port - AREA[0]) // BLOCK_SIZE


def test_ports_lie_below_the_ephemeral_range_in_the_test_area() -> None:
    for _ in range(5):
        port = free_port()
        assert port < 32768
        assert 10_000 <= port <= 19_999


def test_two_calls_give_two_ports() -> None:
    assert free_port() != free_port()


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_a_port_bound_right_now_is_passed_over(kind: socket.SocketKind) -> None:
    # Handed out in turn, the port after `first` comes next unless it is taken: hold it.
    # When `first` ends the block, the next one would wrap round to the block's start, and a
    # port another program holds cannot be held here: try again from the next one.
    for _ in range(BLOCK_SIZE):
        first = free_port()
        held = first + 1
        if block_of(held) != block_of(first):
            continue
        with socket.socket(socket.AF_INET, kind) as holder:
            try:
                holder.bind(("127.0.0.1", held))
            except OSError:
                continue
            following = free_port()
        assert following != held
        assert block_of(following) == block_of(first)
        return
    pytest.fail("found no port next to a handed out one to hold")


def test_another_host_on_loopback() -> None:
    port = free_port("127.0.0.2")
    assert AREA[0] <= port < AREA[1]
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.2", port))


# Another test run on this machine, made to try this run's block first.
OTHER_RUN = """
import random, sys
from tests.support.ports import free_port
mine = int(sys.argv[1])
random.SystemRandom.shuffle = lambda self, starts: starts.sort(key=lambda start: start != mine)
print(free_port())
"""


def test_another_test_run_gets_another_block() -> None:
    mine = free_port()  # this process holds its block from here on
    first_of_mine = AREA[0] + block_of(mine) * BLOCK_SIZE
    theirs = subprocess.run(
        [sys.executable, "-c", OTHER_RUN, str(first_of_mine)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert block_of(int(theirs.stdout)) != block_of(mine)
