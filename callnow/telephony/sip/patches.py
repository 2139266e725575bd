"""Small runtime patches for defects of sippy 2.5.0 (pinned). Never edit sippy on disk.

`apply()` is called by `SipStack.start()`, before the stack creates any sippy object or
starts sippy's thread; importing this package changes nothing in sippy. It refuses any
sippy but the version the patches were written against (`UnsupportedSippyVersion`): each
patch replaces a sippy function whose code it knows. Each patch is idempotent, has a
regression test in tests/telephony/test_sip_patches.py, and is written up as a fix to send
upstream in docs/sippy-patches/ (with how to drop it). Remove a patch when the pin moves to
a sippy release that fixes it (the test then tells you whether it still matters).

1. `transport_case`: RFC 3261 URI parameters are case-insensitive, but sippy stores the value
   of `;transport=` as received and `SipTransactionManager.newTransaction()` compares it with
   'udp' case-sensitively. A peer whose Contact says `;transport=UDP` (SIPp does) makes every
   in-dialog request (BYE, re-INVITE) raise `RuntimeError: BUG: newTransaction() to
   unsupported transport: UDP`, so the call can never be hung up. Fix: lower-case the value
   when a URI is parsed (`SipURL.setParams`).

2. `exceptions_to_logging`: sippy reports exceptions it swallows (parse errors, errors in
   callbacks) with `dump_exception()`, which prints tracebacks to stdout. Route them to the
   `callnow.telephony.sip.sippy` logger instead: parse failures of hostile or broken input are
   INFO without a traceback (so garbage on the port cannot flood the log with tracebacks),
   anything else is an ERROR with its traceback. Both are rate-limited per kind
   (`input_log`): a flood costs one line per kind per interval on the sippy thread.

3. `parse_error_response`: when a request cannot be parsed (e.g. a body shorter than its
   Content-Length), `SipTransactionManager.handleIncoming()` calls
   `SipParseError.getResponse()` without the request argument it requires. The TypeError
   replaces the 400 Bad Request that sippy had already prepared (`sip_response`), so the
   sender never learns and an ERROR traceback is logged per datagram. Fix: make the argument
   optional; return the prepared response, or None when there is nothing to answer.

The next two change no behaviour; they cut what sippy costs per message, found with a profiler
on bench/sip_flows_bench.py (figures: docs/decisions/0005-sippy-patches.md):

4. `clock_without_ctypes`: sippy reads the clock (`MonoTime()`, several times per message and
   every 10 ms tick) through `ctypes` calls to libc's `clock_gettime`. A ctypes call releases
   the GIL and must take it back, so each clock read on the sippy thread waited for the asyncio
   thread's switch interval: `clock_gettime` was the sippy thread's top entry.
   `time.clock_gettime_ns` reads the same clock (same clock
   id, same values) without letting go of the GIL.

5. `my_attribute_check`: sippy renders every URI, Via and o= line with `'my' in dir(x)` (is
   this a "my own address/port/transport" placeholder?). `dir()` builds and sorts the list of
   all attribute names of a str or int each time; it was most of `SipURL.localStr`'s own time,
   the top Python function under the GIL. In those modules `dir` now answers `in` with
   `hasattr`, which is the same question for these objects (sippy's `My*` classes have a class
   attribute `my`; strings and ints have none), and iterates like the real `dir()` otherwise.

6. `prompt_thread_wakeups`: `ED2.callFromThread()` is meant to wake the sippy thread at once
   (libelperiodic signals it with SIGURG). But ED2 is built when sippy is imported, on the main
   thread: libelperiodic then blocks SIGURG there (every thread started later inherits the
   mask) and signals the main thread, so the thread running `ED2.loop()` only ever woke at its
   next 10 ms tick, so every hand-off to sippy (each INVITE, CANCEL, BYE) waited for it: most
   of the time from the write-ahead leg row to the INVITE on the wire. Fix: ED2's ticker is
   replaced by one that sleeps on a `threading.Event` until the next tick, and a call from
   another thread sets the event.
   A test checks that a hand-off no longer waits for a tick.

7. `header_parse_error_response`: sippy reads From, Call-ID, CSeq and every Via
   (`SipRequest.getTIds()`) to find a request's transaction, before any hook of ours runs.
   When one of those headers cannot be parsed (a From with an unterminated quote, a CSeq
   whose number is not a number) the parser's exception is not a `SipParseError`, so
   `handleIncoming()` drops the request unanswered. Fix: turn such an exception into a
   `SipParseError` carrying a prepared "400 Bad <Header> Header" (built from the request's
   headers as received), which `handleIncoming()` sends; nothing when the top Via is the
   unreadable one (there is no one to answer) or a mandatory header is missing.

8. `update_requests`: sippy 2.5.0 has no handler for UPDATE (RFC 3311) in any dialog state,
   and a state without a handler sends no response at all, so a phone's UPDATE (hold by
   UPDATE, a session-timer refresh) was retransmitted for 32 s and then, for many phones,
   the call torn down. Fix: in a confirmed dialog an UPDATE without a body is answered
   200 OK (with our Contact: it refreshes the target); one with an offer becomes a
   `CCEventUpdate`, as a re-INVITE does, carrying the request as `sip_update` so the
   application answers it (200 with its answer, or a failure) with `answer_sip_update()`.
   While our own offer is outstanding (a re-INVITE of ours) an UPDATE is refused 491; while
   the peer's re-INVITE waits for our answer, 500 with Retry-After (both RFC 3311 5.2).
   Before the answer (an early dialog: the callee rings) sippy does not even match the UPDATE
   to our call: it knows the callee's tag only from the 2xx, so the request was answered 481,
   which tells the phone the dialog is gone (RFC 3261 12.2.1.2) and may end its ringing. Now
   an UPDATE addressed to our tag reaches the ringing call: without a body it is answered
   200 OK; with an offer 491, since our INVITE's offer has no reliable answer yet (we send no
   `Supported: 100rel`, so only the 2xx answers it).

9. `ack_before_bye`: when our CANCEL crosses the callee's 200 OK, `UacStateCancelling` sends
   the BYE from inside the response callback, and the transaction manager sends the 200's ACK
   only after that callback returns: the BYE goes out before the ACK. RFC 3261 (13.2.2.4,
   15) has the caller ACK every 2xx first; a strict UAS (SIPp) aborts on the early BYE.
   Fix: the BYE of that state waits for the next pass of sippy's loop, after the ACK.
"""

from __future__ import annotations

import builtins
import collections
import importlib.metadata
import logging
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from callnow.telephony.sip.input_log import sippy_log

log = logging.getLogger("callnow.telephony.sip.sippy")

# The only sippy release whose code these patches were checked against.
SUPPORTED_SIPPY_VERSION = "2.5.0"

_applied: set[str] = set()
_apply_lock = threading.Lock()


class UnsupportedSippyVersion(RuntimeError):
    """The installed sippy is not the one the patches were written for."""


# Modules that bound `dump_exception` by name at import time.
_DUMP_EXCEPTION_USERS = (
    "sippy.Core.EventDispatcher",
    "sippy.Network_server",
    "sippy.Udp_server",
    "sippy.SipTransactionManager",
)


# Modules whose only use of `dir()` is the `'my' in dir(x)` test (checked for sippy 2.5.0).
_MY_CHECK_USERS = ("sippy.SipURL", "sippy.SipVia", "sippy.SipConf", "sippy.SdpOrigin")


def installed_sippy_version() -> str:
    return importlib.metadata.version("sippy")


def apply() -> None:
    """Apply every patch once; safe to call many times, from any thread.

    Raises UnsupportedSippyVersion (and patches nothing) unless sippy is exactly
    SUPPORTED_SIPPY_VERSION.
    """
    installed = installed_sippy_version()
    if installed != SUPPORTED_SIPPY_VERSION:
        raise UnsupportedSippyVersion(
            f"sippy {installed} is installed, but CallNow's sippy patches are written for "
            f"sippy {SUPPORTED_SIPPY_VERSION} only; install sippy=={SUPPORTED_SIPPY_VERSION} "
            "or review callnow/telephony/sip/patches.py and docs/sippy-patches/ for the new one"
        )
    with _apply_lock:
        _patch_transport_case()
        _patch_exceptions_to_logging()
        _patch_parse_error_response()
        _patch_clock_without_ctypes()
        _patch_my_attribute_check()
        _patch_prompt_thread_wakeups()
        _patch_header_parse_error_response()
        _patch_update_requests()
        _patch_ack_before_bye()


def _patch_transport_case() -> None:
    if "transport_case" in _applied:
        return
    from sippy.SipURL import SipURL

    original = SipURL.setParams

    def setParams(self: Any, params: Any) -> None:
        original(self, params)
        if isinstance(self.transport, str):
            self.transport = self.transport.lower()

    setParams.__wrapped__ = original  # type: ignore[attr-defined]  # marks it as our patch
    SipURL.setParams = setParams
    _applied.add("transport_case")


def _dump_exception(msg: str, f: Any = None, extra: str | None = None) -> None:
    exc = sys.exc_info()[1]
    # sippy's messages end in " from <address>"; the kind of a problem is what comes before.
    kind = f"{msg.split(' from ', 1)[0]}: {type(exc).__name__}"
    # Only errors that are certainly about the input are downgraded: a bug of ours raised in a
    # callback travels through the same "processing incoming data" path and must stay loud.
    if msg.startswith("can't parse") or isinstance(exc, UnicodeDecodeError):
        # Short: a UnicodeDecodeError's repr carries the whole datagram.
        written = sippy_log.log(
            logging.INFO,
            kind,
            "sippy dropped input: %s: %s",
            msg,
            f"{type(exc).__name__}: {exc}"[:200],
        )
    else:
        written = sippy_log.log(
            logging.ERROR, kind, "sippy swallowed an exception: %s", msg, exc_info=True
        )
    # The datagram itself only with a line that was written, so DEBUG is rate-limited too.
    if written and extra is not None and log.isEnabledFor(logging.DEBUG):
        log.debug("offending data: %r", extra[:2000])


def _patch_exceptions_to_logging() -> None:
    if "exceptions_to_logging" in _applied:
        return
    import importlib

    for name in _DUMP_EXCEPTION_USERS:
        module = importlib.import_module(name)
        module.dump_exception = _dump_exception  # type: ignore[attr-defined]  # sippy's global
    _applied.add("exceptions_to_logging")


def _patch_parse_error_response() -> None:
    if "parse_error_response" in _applied:
        return
    from sippy.Exceptions.SipParseError import SipParseError

    original = SipParseError.getResponse

    def getResponse(self: Any, req: Any = None) -> Any:
        if self.sip_response is not None:
            return self.sip_response
        if req is None:
            return None
        return original(self, req)

    getResponse.__wrapped__ = original  # type: ignore[attr-defined]  # marks it as our patch
    SipParseError.getResponse = getResponse
    _applied.add("parse_error_response")


def _clock_getitime(clock_id: int) -> tuple[int, int]:
    """sippy's `clock_getitime`: (seconds, nanoseconds) of `clock_id`, without ctypes."""
    return divmod(time.clock_gettime_ns(clock_id), 1_000_000_000)


def _patch_clock_without_ctypes() -> None:
    if "clock_without_ctypes" in _applied:
        return
    from sippy.Time import clock_dtime

    # clock_getdtime/clock_getntime (and so MonoTime) look this name up at each call.
    _clock_getitime.__wrapped__ = clock_dtime.clock_getitime  # type: ignore[attr-defined]  # ours
    clock_dtime.clock_getitime = _clock_getitime
    _applied.add("clock_without_ctypes")


class _AttributeNames:
    """What `dir(obj)` returns for sippy's `'my' in dir(x)`: membership is `hasattr`."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and hasattr(self._obj, name)

    def __iter__(self) -> Iterator[str]:
        return iter(builtins.dir(self._obj))

    def __len__(self) -> int:
        return len(builtins.dir(self._obj))


def _patch_my_attribute_check() -> None:
    if "my_attribute_check" in _applied:
        return
    import importlib

    for name in _MY_CHECK_USERS:
        # A module global shadows the builtin for that module's code only.
        importlib.import_module(name).dir = _AttributeNames  # type: ignore[attr-defined]  # see above
    _applied.add("my_attribute_check")


class WakeableTicker:
    """Stands in for sippy's `ElPeriodic`: ticks `freq` times a second, as sippy expects, and
    returns early when another thread hands over a call."""

    def __init__(self, freq: float) -> None:
        self._periods = [1.0 / freq]
        self._period = self._periods[0]
        self._next_tick = time.monotonic() + self._period
        self._calls: collections.deque[tuple[Any, tuple[Any, ...]]] = collections.deque()
        self._wake = threading.Event()

    def call_from_thread(self, handler: Any, *args: Any) -> None:
        """Any thread: run `handler(*args)` on the ticking thread soon."""
        self._calls.append((handler, args))
        self._wake.set()

    def procrastinate(self) -> None:
        """The ticking thread: sleep until the next tick, or until a call arrives; run the
        calls that arrived. A call queued after the check below sets the event, so the wait
        returns at once: no wake-up is lost."""
        timeout = self._next_tick - time.monotonic()
        if timeout > 0 and not self._calls:
            self._wake.wait(timeout)
        self._wake.clear()
        now = time.monotonic()
        if now >= self._next_tick:
            missed = (now - self._next_tick) // self._period
            self._next_tick += self._period * (missed + 1)
        calls = self._calls
        while calls:
            handler, args = calls.popleft()
            handler(*args)

    def addband(self, freq: float) -> int:
        self._periods.append(1.0 / freq)
        return len(self._periods) - 1

    def useband(self, band: int) -> None:
        self._period = self._periods[band]


# libelperiodic's own ticker, kept alive: freeing it with its signal handler installed is not
# something its authors test.
_replaced_tickers: list[Any] = []


def _patch_prompt_thread_wakeups() -> None:
    if "prompt_thread_wakeups" in _applied:
        return
    from sippy.Core.EventDispatcher import ED2

    _replaced_tickers.append(ED2.elp)
    ED2.elp = WakeableTicker(ED2.bands[0][0])
    _applied.add("prompt_thread_wakeups")


def _patch_header_parse_error_response() -> None:
    if "header_parse_error_response" in _applied:
        return
    from sippy.Exceptions.SipParseError import SipParseError
    from sippy.SipRequest import SipRequest

    from callnow.telephony.sip.input_policy import find_malformed_header

    original = SipRequest.getTIds  # SipMsg's; responses keep it unpatched

    def getTIds(self: Any) -> Any:
        try:
            return original(self)
        except SipParseError:
            raise
        except Exception as exc:
            malformed = find_malformed_header(self)
            response = None
            if malformed is not None and malformed.header != "Via":
                try:
                    response = self.genResponse(400, malformed.reason)
                except Exception:  # a mandatory header is missing: nothing to answer with
                    response = None
            reason = malformed.reason if malformed is not None else "Bad Request"
            raise SipParseError(f"{reason}: {type(exc).__name__}", response) from exc

    getTIds.__wrapped__ = original  # type: ignore[attr-defined]
    SipRequest.getTIds = getTIds
    _applied.add("header_parse_error_response")


def answer_sip_update(
    ua: Any, request: Any, code: int, reason: str, sdp: str | None = None
) -> None:
    """Send the response to a peer's UPDATE (`CCEventUpdate.sip_update`); on the sippy
    thread. A 2xx carries `sdp` (the answer) and our Contact (RFC 3311 5.2); a 500 carries
    Retry-After. On a 2xx with `sdp` the dialog's local SDP becomes it."""
    from sippy.MsgBody import MsgBody
    from sippy.SipHeader import SipHeader

    body = MsgBody(sdp) if sdp is not None else None
    response = request.genResponse(code, reason, body, server=ua.local_ua)
    if code < 300 and ua.lContact is not None:
        response.appendHeader(SipHeader(name="contact", body=ua.lContact))
    if code == 500:
        response.appendHeader(SipHeader(name="retry-after", body=str(random.randint(1, 10))))
    ua.global_config["_sip_tm"].sendResponse(response)
    if code < 300 and body is not None:
        ua.lSDP = body


def _forget_unanswered(manager: Any, transaction: Any) -> None:
    """An UPDATE nobody answered in 32 s: drop its transaction (as sippy would have)."""
    transaction.teE = None
    if manager.tserver.get(transaction.tid) is transaction:
        del manager.tserver[transaction.tid]
        transaction.cleanup()


def _patch_update_requests() -> None:
    if "update_requests" in _applied:
        return
    from sippy.CCEvents import CCEventUpdate
    from sippy.Time.Timeout import Timeout
    from sippy.UA import UA
    from sippy.UacStateRinging import UacStateRinging
    from sippy.UacStateTrying import UacStateTrying
    from sippy.UacStateUpdating import UacStateUpdating
    from sippy.UasStateUpdating import UasStateUpdating
    from sippy.UaStateConnected import UaStateConnected

    def connected_update(state: Any, req: Any) -> None:
        ua = state.ua
        body = req.getBody()
        if body is None:  # no offer: a target or session-timer refresh
            answer_sip_update(ua, req, 200, "OK")
            return None
        # The answer comes later, but sippy drops a non-INVITE server transaction that has no
        # response and no timer when this handler returns: a guard timer keeps it (and ends it
        # after Timer F's 32 s if nobody answers).
        manager = ua.global_config["_sip_tm"]
        transaction = manager.tserver.get(req.getTId(wBRN=True))
        if transaction is not None and transaction.teE is None:
            transaction.teE = Timeout(_forget_unanswered, 32.0, 1, manager, transaction)
        event = CCEventUpdate(body, rtime=req.rtime, origin=ua.origin)
        event.sip_update = req  # answered by the application: answer_sip_update()
        ua.rSDP = body.getCopy()
        ua.equeue.append(event)
        return None

    def our_offer_outstanding(state: Any, req: Any) -> None:
        req.sendResponse(491, "Request Pending")
        return None

    def early_update(state: Any, req: Any) -> None:
        if req.getBody() is not None:  # our INVITE's offer is still unanswered
            return our_offer_outstanding(state, req)
        answer_sip_update(state.ua, req, 200, "OK")
        return None

    def their_offer_unanswered(state: Any, req: Any) -> None:
        answer_sip_update(state.ua, req, 500, "Server Internal Error")
        return None

    original_is_yours = UA.isYours

    def isYours(self: Any, req: Any = None, **tags: Any) -> Any:
        ours = original_is_yours(self, req, **tags)
        if ours is not None or req is None or req.getMethod() != "UPDATE":
            return ours
        # An early dialog: the callee's tag is not known yet, ours and the Call-ID must match.
        if isinstance(self.state, UacStateTrying) and self.rUri.getTag() is None:
            same_call = str(req.getHFBody("call-id")) == str(self.cId)
            if same_call and req.getHFBody("to").getTag() == self.lUri.getTag():
                return self
        return None

    UA.isYours = isYours

    for state_class, handler in (
        (UaStateConnected, connected_update),
        (UacStateUpdating, our_offer_outstanding),
        (UasStateUpdating, their_offer_unanswered),
        (UacStateTrying, early_update),
        (UacStateRinging, early_update),
    ):
        state_class.recv_request_handlers = {
            **state_class.recv_request_handlers,
            "UPDATE": handler,
        }
    _applied.add("update_requests")


def _patch_ack_before_bye() -> None:
    if "ack_before_bye" in _applied:
        return
    from sippy.Time.Timeout import Timeout
    from sippy.UacStateCancelling import UacStateCancelling

    original = UacStateCancelling.recvResponse

    def recvResponse(self: Any, resp: Any, tr: Any) -> Any:
        if not 200 <= resp.getSCode()[0] < 300:
            return original(self, resp, tr)
        ua = self.ua
        held: list[Any] = []
        ua.newTransaction = lambda req, *args, **kwargs: held.append((req, args, kwargs))
        try:
            result = original(self, resp, tr)
        finally:
            del ua.newTransaction  # the class's method again
        for req, args, kwargs in held:  # the BYE: sent once the ACK has left
            Timeout(lambda r=req, a=args, k=kwargs: ua.newTransaction(r, *a, **k), 0, 1)
        return result

    UacStateCancelling.recvResponse = recvResponse
    _applied.add("ack_before_bye")


def applied() -> frozenset[str]:
    """Names of the patches in effect (for diagnostics and tests)."""
    return frozenset(_applied)
