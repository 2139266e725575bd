"""One log line per kind of bad SIP input per interval, with a count of the ones left out.

Hostile or broken datagrams can arrive thousands of times a second, and every line logged is
written on the sippy thread, which also answers the OPTIONS a proxy uses to decide whether we
are alive. So each kind of problem (an unparseable To, a datagram that is not UTF-8, ...) is
logged at most once per `interval_s`; the next line of that kind says how many were left out
meanwhile. Deciding costs a dict lookup and a clock read.

The sippy thread is the only writer in production; the lock only matters for tests and
for `reset()` from another thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 10.0


@dataclass(slots=True)
class _KindState:
    last_logged: float
    suppressed: int = 0


class RateLimitedLog:
    """Log through `logger`, at most one line per kind per `interval_s`."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._kinds: dict[str, _KindState] = {}
        self._lock = threading.Lock()

    def log(
        self, level: int, kind: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log `message % args` unless `kind` was logged less than `interval_s` ago.

        Returns whether a line was written. `exc_info` (a traceback) is only ever attached to
        a line that is written, so a flood of one error costs one traceback per interval.
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = self._clock()
        with self._lock:
            state = self._kinds.get(kind)
            if state is not None and now - state.last_logged < self.interval_s:
                state.suppressed += 1
                return False
            suppressed = state.suppressed if state is not None else 0
            self._kinds[kind] = _KindState(last_logged=now)
        if suppressed:
            message += " (%d more of this kind in the last %.0f s not logged)"
            args = (*args, suppressed, self.interval_s)
        self.logger.log(level, message, *args, exc_info=exc_info or None)
        return True

    def reset(self) -> None:
        """Forget what was logged: the next line of every kind is written (a new stack)."""
        with self._lock:
            self._kinds.clear()


# Requests the stack refuses as malformed (see `input_policy`).
input_log = RateLimitedLog(logging.getLogger("callnow.telephony.sip.input"))
# What sippy drops or swallows itself (see patch `exceptions_to_logging`).
sippy_log = RateLimitedLog(logging.getLogger("callnow.telephony.sip.sippy"))


def reset_all() -> None:
    """A stack starts: log the first line of every kind again."""
    input_log.reset()
    sippy_log.reset()
