"""Asking the kernel about processes a test started, or that they started."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its exit code.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
