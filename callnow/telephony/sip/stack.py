"""`SipStack`: start/stop sippy on a UDP address and dial outbound legs from asyncio.

One stack per process (sippy's event loop and configuration are process-wide). It places
calls only: incoming INVITEs outside a dialog are refused, OPTIONS are answered (so a proxy's
health checks work), in-dialog requests go to their leg. A request with a header that cannot
be read is answered 400 before anything else reads it (`input_policy`).

Requests outside our calls get a transaction (and a 403 retransmitted until acknowledged) only
from `trusted_sources`. Everyone else gets one reply sent without a transaction, or nothing
(`untrusted_requests`): an INVITE with a forged source address reflects at most one datagram,
never seven. Those requests are also held to a rate per source address (`source_limit`).
Bad input is logged once per kind per interval (`input_log`), never with a traceback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from sippy.Core.EventDispatcher import ED2
from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.Exceptions.SdpParseError import SdpParseError
from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipCallId import SipCallId
from sippy.SipConf import SipConf
from sippy.SipTransactionManager import SipTMRetransmitO, SipTransactionManager
from sippy.Udp_server import Udp_server, Udp_server_opts

from callnow.config import SipSettings
from callnow.telephony.sip import input_log, patches
from callnow.telephony.sip.headers import (
    CallerId,
    Credentials,
    InvalidSipInput,
    build_extra_headers,
    parse_request_uri,
)
from callnow.telephony.sip.input_policy import MalformedHeader, find_malformed_header
from callnow.telephony.sip.leg import EventCallback, Leg, LegRecord
from callnow.telephony.sip.reactor import reactor
from callnow.telephony.sip.register import RegistrationAgent, RegistrationSpec, RegistrationState
from callnow.telephony.sip.source_limit import SourceRateLimit
from callnow.telephony.sip.uac import DialSpec, UacDriver

log = logging.getLogger(__name__)
wire_log = logging.getLogger("callnow.telephony.sip.wire")

_SEND_DRAIN_TIMEOUT_S = 2.0
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class SipStackError(RuntimeError):
    """The stack could not start (address in use, another stack running) or is stopped."""


class _UdpOpts(Udp_server_opts):
    # No SO_REUSEPORT: with it a second process could bind our port and steal half the
    # datagrams. One worker: several receiver/sender threads may reorder messages.
    flags = 0
    nworkers = 1


# sippy answers these itself (a 400 or 488) when they escape from handling a request.
_ANSWERED_BY_SIPPY = (SipParseError, SdpParseError, RtpProxyError)


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


UntrustedRequests = Literal["answer_once", "drop"]


def answer_outside_dialog(req: Any) -> Any:
    """The reply to a request outside our calls (we place calls; we take none)."""
    # Every header read here was checked readable by `find_malformed_header`.
    if req.getHFBody("to").getTag() is not None:
        return req.genResponse(481, "Call/Transaction Does Not Exist")
    method = req.getMethod()
    if method == "OPTIONS":
        return req.genResponse(200, "OK")
    if method == "INVITE":
        return req.genResponse(403, "Incoming calls not accepted")
    return req.genResponse(501, "Not Implemented")


class _TransactionManager(SipTransactionManager):
    model_udp_server = (Udp_server, _UdpOpts)
    # Who gets requests outside our dialogs handled in full (see SipSettings).
    trusted_sources: tuple[_Network, ...] = ()
    untrusted_requests: UntrustedRequests = "answer_once"
    source_limit: SourceRateLimit | None = None

    def incomingRequest(self, msg: Any, checksum: bytes, tids: Any, server: Any) -> None:
        """Answer unsolicited requests from untrusted sources once or not at all, refuse a
        request with an unreadable header before any transaction exists; never let an
        exception from handling a request reach sippy's receive loop (it would cost a
        traceback per datagram and leave the transaction behind)."""
        try:
            if not self._solicited_or_trusted(msg, tids):
                self._answer_untrusted(msg, checksum, server)
                return
            malformed = find_malformed_header(msg)
            if malformed is not None:
                self._refuse_malformed(msg, malformed, checksum, server)
                return
            super().incomingRequest(msg, checksum, tids, server)
        except _ANSWERED_BY_SIPPY:
            raise
        except Exception as exc:
            # A retransmission costs nothing (unless an answer went out and is cached).
            self.l1rcache.setdefault(checksum, SipTMRetransmitO())
            input_log.sippy_log.log(
                logging.ERROR,
                f"request handling failed: {type(exc).__name__}",
                "handling a %s request failed: %s",
                msg.getMethod(),
                f"{type(exc).__name__}: {exc}"[:200],
                exc_info=True,
            )

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted_sources)

    def _solicited_or_trusted(self, msg: Any, tids: Any) -> bool:
        if tids[0][0] in self.req_consumers:  # the Call-ID of a dialog of ours
            return True
        return self._trusted(msg.getSource()[0])

    def _answer_untrusted(self, msg: Any, checksum: bytes, server: Any) -> None:
        """One reply at most, outside any transaction; the checksum then remembers that
        nothing more is owed, so a retransmission (or a replay) of the request gets nothing."""
        self.l1rcache[checksum] = SipTMRetransmitO()
        method = msg.getMethod()
        host, port = msg.getSource()
        limit = self.source_limit
        if limit is not None and not limit.allow(host, time.monotonic()):
            input_log.input_log.log(
                logging.INFO,
                "source over its rate",
                "dropped unsolicited requests from %s: over %s a second",
                host,
                limit.per_second,
            )
            return
        if self.untrusted_requests == "drop" or method == "ACK":
            input_log.input_log.log(
                logging.INFO,
                "untrusted source",
                "dropped an unsolicited %s request from untrusted %s:%s",
                method,
                host,
                port,
            )
            return
        malformed = find_malformed_header(msg)
        if malformed is not None:
            self._log_malformed(msg, malformed)
            response = msg.genResponse(400, malformed.reason)
        else:
            response = answer_outside_dialog(msg)
            if response.getHFBody("to").getTag() is None:
                response.getHFBody("to").genTag()
        self.transmitMsg(server, response, msg.getHFBody("via").getTAddr(), None)

    def _log_malformed(self, msg: Any, malformed: MalformedHeader) -> None:
        host, port = msg.getSource()
        input_log.input_log.log(
            logging.INFO,
            f"bad {malformed.header}",
            "malformed %s request from %s:%s: bad %s header (%s)",
            msg.getMethod(),
            host,
            port,
            malformed.header,
            malformed.detail,
        )

    def _refuse_malformed(
        self, msg: Any, malformed: MalformedHeader, checksum: bytes, server: Any
    ) -> None:
        self._log_malformed(msg, malformed)
        if msg.getMethod() == "ACK":  # an ACK is never answered (RFC 3261 17.2.1)
            self.l1rcache[checksum] = SipTMRetransmitO()
            return
        # The response copies To, From, Call-ID and CSeq unparsed (as received), and is not
        # given a To tag: reading the To to add one is what failed. Sent outside any
        # transaction; the checksum caches it, so a retransmission gets the same 400.
        response = msg.genResponse(400, malformed.reason)
        self.transmitMsg(server, response, msg.getHFBody("via").getTAddr(), checksum)


class _WireLogger:
    """sippy's `_sip_logger` interface, writing every SIP message to a DEBUG logger."""

    def write(self, *parts: Any, **_: Any) -> None:
        if wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("%s", "".join(str(p) for p in parts))


class SipStack:
    """The process's SIP user agent (UAC only), listening on UDP `host:port`.

    Use as `async with SipStack(host, port) as stack:` or call `start()`/`stop()`. Port 0
    picks a free port (see `address`), which is what tests use.
    """

    _active: ClassVar[SipStack | None] = None
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5070,
        *,
        user_agent: str = "CallNow",
        trusted_sources: Iterable[str] = (),
        untrusted_requests: UntrustedRequests = "answer_once",
        source_rate_per_s: float = 0.0,
        source_burst: int = 100,
    ) -> None:
        """`trusted_sources`: IP addresses or networks whose requests outside our calls are
        handled in full; everyone else's get what `untrusted_requests` says (one reply
        without retransmission, or nothing) and are held to `source_rate_per_s` datagrams a
        second (0: no limit). See `SipSettings`."""
        self.host = host
        self.port = port
        self.user_agent = user_agent
        self.trusted_sources: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(net, strict=False) for net in trusted_sources
        )
        self.untrusted_requests: UntrustedRequests = untrusted_requests
        self.source_rate_per_s = source_rate_per_s
        self.source_burst = source_burst
        self._config: dict[str, Any] | None = None
        self._address: tuple[str, int] | None = None
        self._legs: dict[str, tuple[UacDriver, Leg]] = {}
        self._registrations: list[RegistrationAgent] = []

    @classmethod
    def from_settings(cls, settings: SipSettings) -> SipStack:
        """A stack on `settings.listen_host:listen_port` (the `[sip]` config section)."""
        return cls(
            settings.listen_host,
            settings.listen_port,
            trusted_sources=settings.trusted_sources,
            untrusted_requests=settings.untrusted_requests,
            source_rate_per_s=settings.source_rate_per_s,
            source_burst=settings.source_burst,
        )

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._config is not None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); only valid while running."""
        if self._address is None:
            raise SipStackError("SIP stack is not running")
        return self._address

    async def start(self) -> None:
        """Bind the UDP port and start accepting work. Raises SipStackError on failure.

        Applies the sippy patches first (once per process; see `patches`), which refuses a
        sippy other than the version they were written for.
        """
        if self.host in ("0.0.0.0", "::", ""):
            # The bound address is also our Contact and Via; a wildcard would go out as is.
            raise SipStackError("listen on a concrete address, not a wildcard")
        try:
            patches.apply()
        except patches.UnsupportedSippyVersion as exc:
            raise SipStackError(str(exc)) from exc
        with SipStack._active_lock:
            if SipStack._active is not None:
                raise SipStackError("a SIP stack is already running in this process")
            SipStack._active = self
        input_log.reset_all()
        try:
            reactor.ensure_running()
            self._config, self._address = await reactor.call(self._start_in_sippy)
        except BaseException as exc:
            with SipStack._active_lock:
                SipStack._active = None
            if isinstance(exc, OSError):
                raise SipStackError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
            raise
        log.info("SIP stack listening on udp:%s:%d", *self._address)  # type: ignore[misc]  # set above

    def _start_in_sippy(self) -> tuple[dict[str, Any], tuple[str, int]]:
        SipConf.my_uaname = self.user_agent
        config: dict[str, Any] = {
            "_sip_address": self.host,
            "_sip_port": self.port,
            "_sip_logger": _WireLogger(),
        }
        tm = _TransactionManager(config, self._on_request)
        tm.trusted_sources = self.trusted_sources
        tm.untrusted_requests = self.untrusted_requests
        if self.source_rate_per_s > 0:
            tm.source_limit = SourceRateLimit(self.source_rate_per_s, self.source_burst)
        config["_sip_tm"] = tm
        server = next(iter(tm.l4r.cache_l2s.values()))
        host, port = server.uopts.laddress[:2]
        return config, (str(host), int(port))

    async def stop(self) -> None:
        """Hang up every live leg (CANCEL/BYE sent once), close the socket, drop timers."""
        if self._config is None:
            return
        try:
            await reactor.call(self._stop_in_sippy)
        finally:
            self._config = None
            self._address = None
            with SipStack._active_lock:
                if SipStack._active is self:
                    SipStack._active = None
        log.info("SIP stack stopped")

    def _stop_in_sippy(self) -> None:
        for agent in self._registrations:
            agent.stop()
        self._registrations = []
        for driver, _leg in list(self._legs.values()):
            driver.hangup("SIP stack stopped")
        self._legs.clear()
        config = self._config
        if config is not None:
            tm = config["_sip_tm"]
            # Udp_server.shutdown() shuts the socket down before its sender thread has sent
            # what is queued, so the CANCELs/BYEs just queued could be lost. Let the senders
            # drain the queue and exit first (None is their stop marker).
            for server in list(tm.l4r.cache_l2s.values()):
                server.sendqueue.put(None)
                for sender in server.asenders:
                    sender.join(_SEND_DRAIN_TIMEOUT_S)
            tm.shutdown()
        # Timers of the dialogs just dropped (retransmissions, 32 s "go dead" timers) would
        # fire into the shut-down transaction manager; the stack owns ED2, so clear them.
        for timer in ED2.tlisteners:
            timer.cleanup()
        ED2.tlisteners = []
        ED2.twasted = 0

    async def __aenter__(self) -> SipStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- dialling ---------------------------------------------------------------------------

    async def dial(
        self,
        request_uri: str,
        *,
        caller: CallerId,
        sdp: str,
        ring_timeout: float,
        credentials: Credentials | None = None,
        asserted_identity: CallerId | None = None,
        extra_headers: Mapping[str, str] | None = None,
        next_hop: tuple[str, int] | None = None,
        from_domain: str | None = None,
        on_event: EventCallback | None = None,
        defer_updates: bool = False,
        update_answer_s: float = 8.0,
        setup_timeout: float | None = None,
    ) -> Leg:
        """Send an INVITE and return its Leg at once; the outcome arrives as events.

        - `request_uri`: complete SIP URI built by the caller (user part digits / leading +).
        - `caller`: From display name and number (the caller ID the callee sees).
        - `sdp`: our SDP offer (from rtpengine).
        - `ring_timeout`: seconds until an unanswered leg is CANCELled (Failed, NO_ANSWER).
        - `credentials`: digest username/password for 401/407; one attempt, never a loop.
        - `asserted_identity`: adds P-Asserted-Identity.
        - `next_hop`: where to send (an outbound proxy); default the URI's host and port.
        - `from_domain`: host part of From/P-Asserted-Identity (default our address).
        - `defer_updates`: the peer's re-INVITEs wait for `Leg.answer_update`, at most
          `update_answer_s` seconds (then they are answered from our last SDP; see DialSpec).
        - `setup_timeout`: no response at all this long fails the leg (UNAVAILABLE, 408
          "No response"); None waits for sippy's 32 s transaction timeout.

        Raises InvalidSipInput (nothing is sent) and SipStackError (not running, or the next
        hop's host name does not resolve).
        """
        if self._config is None:
            raise SipStackError("SIP stack is not running")
        if ring_timeout <= 0:
            raise InvalidSipInput("ring_timeout must be positive")
        if not 0 < update_answer_s <= 60:
            raise InvalidSipInput("update_answer_s must be in (0, 60]")
        if setup_timeout is not None and not 0 < setup_timeout <= 60:
            raise InvalidSipInput("setup_timeout must be in (0, 60]")
        url = parse_request_uri(request_uri)
        headers = build_extra_headers(extra_headers)
        if from_domain is not None and not _HOST.fullmatch(from_domain):
            raise InvalidSipInput(f"from_domain must be a host name or IPv4: {from_domain!r}")
        if credentials is not None:
            _check_credentials(credentials)
        hop = await _resolve_next_hop(next_hop or (str(url.host), int(url.getPort())))
        call_id = str(SipCallId())
        spec = DialSpec(
            call_id=call_id,
            request_uri=url,
            next_hop=hop,
            caller=caller,
            sdp=sdp,
            ring_timeout=float(ring_timeout),
            credentials=credentials,
            asserted_identity=asserted_identity,
            from_domain=from_domain,
            extra_headers=headers,
            defer_updates=defer_updates,
            update_answer_s=float(update_answer_s),
            setup_timeout=setup_timeout,
        )
        loop = asyncio.get_running_loop()
        record = LegRecord(call_id=call_id, dialed_at=datetime.now(UTC))
        leg_box: list[Leg] = []

        def emit(event: Any) -> None:
            leg_box[0].emit_from_sippy(event)

        driver = UacDriver(self._config, spec, emit, self._forget)
        leg = Leg(driver, loop, record, on_event)
        leg_box.append(leg)
        await reactor.call(self._start_leg, driver, leg)
        return leg

    def _start_leg(self, driver: UacDriver, leg: Leg) -> None:
        # sippy thread: the registry is only touched here, so it needs no lock.
        self._legs[driver.spec.call_id] = (driver, leg)
        try:
            driver.start()
        except BaseException:
            del self._legs[driver.spec.call_id]
            raise

    def _forget(self, driver: UacDriver) -> None:
        # sippy thread: the UA reached its Dead state; nothing more can happen on this leg.
        self._legs.pop(driver.spec.call_id, None)

    @property
    def live_legs(self) -> int:
        """Legs whose sippy dialog is not dead yet (includes recently finished ones)."""
        return len(self._legs)

    # -- registrations ---------------------------------------------------------------------

    async def register(
        self,
        spec: RegistrationSpec,
        on_change: Callable[[RegistrationState], None] | None = None,
    ) -> None:
        """Keep `spec`'s account registered until the stack stops (see `RegistrationAgent`).

        Returns once the first REGISTER is on its way; `registrations` tells how it went, and
        `on_change` (called on the SIP thread: keep it short) hears of every new state.
        Raises SipStackError (not running, or the registrar's name does not resolve).
        """
        if self._config is None:
            raise SipStackError("SIP stack is not running")
        resolved = await _resolve_next_hop(spec.registrar)
        agent = RegistrationAgent(self._config, replace(spec, registrar=resolved), on_change)
        await reactor.call(self._start_registration, agent)

    def _start_registration(self, agent: RegistrationAgent) -> None:
        self._registrations.append(agent)
        agent.start()

    @property
    def registrations(self) -> list[RegistrationState]:
        """Each registration's latest state (safe from any thread: states are immutable)."""
        return [agent.state for agent in list(self._registrations)]

    # -- requests outside any dialog ----------------------------------------------------------

    def _on_request(self, req: Any, _transaction: Any) -> tuple[Any, None, None]:
        return (answer_outside_dialog(req), None, None)


async def _resolve_next_hop(hop: tuple[str, int]) -> tuple[str, int]:
    """Resolve the next hop to an IPv4 address here, on asyncio.

    sippy resolves the destination of every datagram in its (single) sender thread; a slow
    DNS answer for a trunk host name would stall every call's signalling. An IP literal
    costs nothing there.
    """
    host, port = hop
    if not 0 < port < 65536:
        raise InvalidSipInput(f"next hop port out of range: {port}")
    try:
        # The usual case (a PBX or trunk by address) needs no resolver, and skipping it saves
        # a round trip through the loop's thread pool per dial.
        return (str(ipaddress.IPv4Address(host)), port)
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
    except OSError as exc:
        raise SipStackError(f"cannot resolve SIP next hop {host!r}: {exc}") from exc
    return (str(infos[0][4][0]), port)


def _check_credentials(credentials: Credentials) -> None:
    for value in (credentials.username, credentials.password):
        if any(ch in value for ch in '"\\\r\n\0'):
            raise InvalidSipInput("credentials must not contain quotes, backslashes or newlines")
    if not credentials.username:
        raise InvalidSipInput("credentials need a username")
