"""The one thread that runs sippy's event loop, and the bridges to and from asyncio.

sippy keeps all its state (timers, transactions, dialogs) in the process-wide singleton `ED2`
and is not thread-safe: every sippy object must be touched from the thread running
`ED2.loop()`. This module owns that thread. It is started lazily, once per process, and is
kept alive across SIP stack start/stop cycles (ED2 cannot be re-created), which is what lets
several tests in one pytest process start and stop their own stack.

Work goes in with `submit()` / `call()`; results and events go back to asyncio with
`post_to_loop()`. Both directions are batched: work waits in a queue, and the other thread is
woken only when no wake-up is pending already, so one wake-up carries everything queued
meanwhile. Each wake-up costs a system call (`ED2.callFromThread` sets an event the sippy thread
sleeps on, see patch 6 in `patches`; `loop.call_soon_threadsafe` writes to the loop's self-pipe),
and each system call lets go of the GIL and then waits for it to come back, up to the other
thread's switch interval when that thread is busy. Under load many events arrive while the
other thread is still busy with the last batch, so most of those waits are saved. Order is
kept: one FIFO queue per direction, one consumer.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sippy.Core.EventDispatcher import ED2

log = logging.getLogger(__name__)

T = TypeVar("T")

_START_TIMEOUT_S = 5.0


class ReactorError(RuntimeError):
    """The sippy thread could not be started or has died."""


class SippyReactor:
    """Owns the thread running `ED2.loop()`; use the module-level `reactor` instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False
        # Work for the sippy thread, and whether a drain of it is already on its way there.
        self._inbox: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._drain_pending = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def in_reactor_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() == self._thread.ident

    def ensure_running(self) -> None:
        """Start the sippy thread if it is not running yet (idempotent, thread-safe).

        `SipStack.start()` applies the sippy patches before calling this: one of them replaces
        the ticker `ED2.loop()` sleeps on, which must happen before the loop first runs.
        """
        with self._lock:
            if self.running:
                return
            self._stopping = False
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="sippy-ed2", daemon=True)
            self._thread.start()
            if not self._ready.wait(_START_TIMEOUT_S):
                raise ReactorError("sippy event loop thread did not start")
            # A drain queued just before a stop may never have run: queue one again.
            self._drain_pending = bool(self._inbox)
            if self._drain_pending:
                ED2.callFromThread(self._drain)

    def _run(self) -> None:
        # Timers check that they are armed from the loop's own thread; claim the singleton.
        ED2.my_ident = threading.get_ident()
        self._ready.set()
        while not self._stopping:
            try:
                ED2.loop()
            except BaseException:
                # ED2 re-raises SystemExit/KeyboardInterrupt raised in a callback; a SIP
                # stack must not die from one bad callback, so log it and keep looping.
                log.exception("sippy event loop raised; continuing")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the sippy thread (only needed at process exit; it is a daemon thread)."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._stopping = True
            ED2.callFromThread(ED2.breakLoop)
            thread.join(timeout)
            self._thread = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the sippy thread, fire and forget (exceptions are logged)."""
        if not self.running:
            raise ReactorError("sippy reactor is not running")
        self._inbox.append((fn, args))
        if not self._drain_pending:
            # Set before the wake-up, so a drain that runs at once cannot leave it set for
            # work it has already taken. A race costs at most one empty drain, never a lost item.
            self._drain_pending = True
            ED2.callFromThread(self._drain)

    def _drain(self) -> None:
        """sippy thread: run everything submitted so far, in order."""
        self._drain_pending = False
        inbox = self._inbox
        while inbox:
            fn, args = inbox.popleft()
            _logged(fn, args)

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` on the sippy thread; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def run() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                post_to_loop(loop, _set_exception, future, exc)
            else:
                post_to_loop(loop, _set_result, future, result)

        self.submit(run)
        return future


def _logged(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("error in sippy-thread callback %r", fn)


def _set_result(future: asyncio.Future[T], result: T) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _LoopInbox:
    """Calls posted to one asyncio loop from other threads, run in order by one drain."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._calls: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._drain_pending = False

    def post(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._calls.append((fn, args))
        if self._drain_pending:
            return
        loop = self._loop()
        if loop is None:
            return
        self._drain_pending = True  # see SippyReactor.submit
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # closed under us (shutdown races): nothing will run there
            self._calls.clear()
            self._drain_pending = False
            log.debug("event loop closed; dropped %r", fn)

    def _drain(self) -> None:
        self._drain_pending = False
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception as exc:  # what the loop does for a failing callback
                loop = self._loop()
                if loop is not None:
                    loop.call_exception_handler(
                        {"message": f"Exception in callback {fn!r}", "exception": exc}
                    )


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopInbox] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def post_to_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` on `loop` soon, from any thread, in the order posted.

    Like `loop.call_soon_threadsafe`, but batched (see the module doc), and a loop closed under
    us (shutdown races) only drops the call.
    """
    inbox = _inboxes.get(loop)
    if inbox is None:
        with _inboxes_lock:
            inbox = _inboxes.get(loop)
            if inbox is None:
                inbox = _inboxes[loop] = _LoopInbox(loop)
    inbox.post(fn, args)


reactor = SippyReactor()
