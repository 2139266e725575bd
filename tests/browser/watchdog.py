"""Ends a browser test whose Chromium stopped answering, instead of the whole run.

Most Playwright calls time out by themselves (30 s), but some have no timeout: `evaluate`
(which axe-core runs through), a key press, closing a context. A Chromium that stops answering
leaves such a call waiting for ever, and pytest-timeout then dumps the stacks and ends the
whole process (`timeout_method = "thread"`), so one stuck browser turned a whole CI run red.

After `limit_s` the watchdog kills the test's own Chromium processes, nothing else: the waiting
call then fails with Playwright's TargetClosedError, which the browser tests' conftest reruns
once on a new Chromium. A test that merely fails a check or times out in Playwright is not
touched.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# Well above the slowest browser test (about 16 s on a quiet machine, a few times that on a
# busy one), so only a stuck Chromium meets it.
LIMIT_S = 90.0


def chromium_below(ancestor: int) -> list[int]:
    """The Chromium processes descended from `ancestor` (the Playwright driver's children)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'
        head, _, rest = stat.rpartition(")")
        names[int(entry.name)] = head.partition("(")[2]
        parents[int(entry.name)] = int(rest.split()[1])

    def descends(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == ancestor:
                return True
        return False

    return [pid for pid, name in names.items() if name.startswith("chrom") and descends(pid)]


@contextmanager
def chromium_watchdog(limit_s: float | None = None) -> Iterator[threading.Event]:
    """Kill this process's Chromium if the block is still running after `limit_s` (by default
    `LIMIT_S`); the event tells whether it had to."""
    limit_s = LIMIT_S if limit_s is None else limit_s
    fired = threading.Event()

    def kill() -> None:
        pids = chromium_below(os.getpid())
        print(
            f"\nbrowser watchdog: Chromium stuck for {limit_s:g} s; killing {len(pids)} "
            "of its processes so the waiting call fails",
            file=sys.stderr,
            flush=True,
        )
        fired.set()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(limit_s, kill)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
