"""An asyncio client for rtpengine's ng control protocol (bencode over UDP).

Each request is `<cookie> <bencoded dict>`; the reply carries the same cookie. rtpengine caches
replies by cookie, so re-sending a request with the *same* cookie is safe: a retransmitted
`offer` does not allocate new ports, it gets the first reply again. We write our own client
because no maintained one exists on PyPI and the protocol is tiny.

How a callback call is anchored (one rtpengine call, two monologues)
--------------------------------------------------------------------
CallNow is the UAC of both SIP legs (owner first, visitor later), so neither phone sends the
first offer. We keep *both legs in one rtpengine call-id* with two tags chosen by the engine
(say OWNER and VISITOR), because rtpengine relays media only between monologues of one call
that were paired by offer/answer. Each SIP leg as its own rtpengine call would give two
islands: 10.5 has no `connect` to join them (it came in 2024, after 10.5), and relaying
through our own process would put Python in the media path.

1. `offer(call_id, from_tag=VISITOR, sdp=placeholder_sdp())` - the visitor side does not exist
   yet, so a placeholder offer (PCMU/PCMA/telephone-event, a discard port on loopback; G.722
   first when a trunk may carry it) stands in for it. The reply is the SDP, with rtpengine's
   owner-facing port, for the INVITE to the owner.
2. Owner answers: `answer(call_id, VISITOR, OWNER, sdp=owner_sdp)` completes that exchange.
   Then the owner's side is offered again, towards the visitor: `offer(call_id, from_tag=OWNER,
   to_tag=VISITOR, sdp=owner_sdp)` with the trunk's codecs as ng `codec` flags (`strip` all,
   `transcode` the list): the reply, with an `o=` line of ours, is the trunk INVITE's offer,
   so the carrier may pick A-law while the owner's phone talks mu-law (rtpengine transcodes).
3. `play_media(call_id, OWNER, file=prompt.wav)` plays to the owner; the owner's RFC 4733 digits
   arrive on the DTMF log (`callnow.telephony.dtmf_log`) with `source_tag == OWNER`.
4. On "1": INVITE the visitor with the SDP from step 2. When the visitor answers,
   `answer(call_id, OWNER, VISITOR, sdp=visitor_sdp)` with the `port latching` flag (see
   `visitor_answered()`). Without that flag rtpengine 10.5 opens a *new local port* when the
   remote port changes, and the phones would be talking to stale ports. After this, RTP flows
   owner <-> rtpengine <-> visitor. A re-INVITE from either phone later (hold, resume, a new
   address) is offered from its tag to the other's and answered back the same way.
5. `delete(call_id)` when either leg ends.

rtpengine passes the offerer's `o=` line through (`replace=["origin"]` only swaps the address),
so every SDP we send carries the `o=` of the session we first announced to that party, with a
higher version on each change (RFC 3264 8). `AnchoredCallback` wraps steps 1-5 and takes care
of that.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from callnow.config import RtpengineSettings
from callnow.telephony.bencode import BencodeError, BValue, bdecode, bencode
from callnow.telephony.sdp import continue_origin, own_origin

__all__ = [
    "AnchoredCallback",
    "BencodeError",
    "RtpengineClient",
    "RtpengineError",
    "RtpengineProtocolError",
    "RtpengineUnavailable",
    "bdecode",
    "bencode",
    "placeholder_sdp",
]

log = logging.getLogger(__name__)

# What the trunk is offered unless configured otherwise: A-law first (most carriers outside
# North America), then mu-law.
DEFAULT_TRUNK_CODECS: tuple[str, ...] = ("PCMA", "PCMU")
# What an owner's phone is offered again when the visitor's side re-offers (hold, resume):
# the placeholder's G.711 pair, so the owner's phone never has to accept a codec it did not.
OWNER_CODECS: tuple[str, ...] = ("PCMU", "PCMA")
# The same where the owner's phone was offered G.722 first (a trunk's list has G722).
WIDEBAND_OWNER_CODECS: tuple[str, ...] = ("G722", "PCMU", "PCMA")


class RtpengineUnavailable(ConnectionError):
    """Nothing answered the request within its timeout (daemon down, wrong address, overload)."""


class RtpengineError(RuntimeError):
    """rtpengine answered with `result: error`."""

    def __init__(self, command: str, result: str, reason: str) -> None:
        super().__init__(f"rtpengine {command!r} failed: {reason} (result={result})")
        self.command = command
        self.result = result
        self.reason = reason


class RtpengineProtocolError(RuntimeError):
    """rtpengine's reply could not be understood."""


def placeholder_sdp(
    *,
    address: str = "127.0.0.1",
    port: int = 9,
    session_id: int | None = None,
    wideband: bool = False,
) -> str:
    """SDP standing in for a party that has not been called yet (step 1 in the module doc).

    Offers PCMU, PCMA and RFC 4733 events, sendrecv, at the discard port: rtpengine forwards the
    owner's audio there until the real party replaces it by a re-offer. With `wideband`, G.722
    comes first (its RTP clock rate is 8000 by RFC 3551's old mistake, though it samples at
    16 kHz), so a wide-band owner's phone can keep it end to end.
    """
    # Unique enough for an o= line; `random`, not `secrets`: no OS call per callback.
    sid = session_id if session_id is not None else random.getrandbits(31)
    formats, g722 = ("9 0 8 101", "a=rtpmap:9 G722/8000\r\n") if wideband else ("0 8 101", "")
    return (
        "v=0\r\n"
        f"o=callnow {sid} 1 IN IP4 {address}\r\n"
        "s=callnow\r\n"
        f"c=IN IP4 {address}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\n"
        f"{g722}"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def _ng_params(flags: Mapping[str, Any]) -> dict[str, BValue]:
    """Python keyword names to ng keys: `transport_protocol` -> `transport-protocol`.

    rtpengine 10.5 accepts the hyphenated spelling of every key that has spaces in the docs.
    `None` values are dropped so callers can pass optionals through.
    """
    return {key.replace("_", "-"): value for key, value in flags.items() if value is not None}


# Replies read per wake-up of the socket, at most, so one busy socket cannot starve the loop.
_MAX_REPLIES_PER_WAKEUP = 64


class _Request:
    """One request in flight: its reply future, its datagram, and its retry timer."""

    __slots__ = ("attempt_s", "attempts_left", "command", "future", "packet", "timer")

    def __init__(
        self,
        future: asyncio.Future[dict[str, Any]],
        command: str,
        packet: bytes,
        attempts: int,
        attempt_s: float,
    ) -> None:
        self.future = future
        self.command = command
        self.packet = packet
        self.attempts_left = attempts
        self.attempt_s = attempt_s
        self.timer: asyncio.TimerHandle | None = None


class RtpengineClient:
    """One UDP socket to one rtpengine; any number of concurrent requests.

    `timeout_s` is the whole budget of one request; it is sent again once, halfway through, if
    no reply came (UDP may drop it). `RtpengineUnavailable` is raised when the budget is spent.

    The socket is a plain non-blocking UDP socket watched with `loop.add_reader`, not an
    asyncio datagram transport: the transport reads one datagram per pass of the event loop,
    so under load replies queued up in the socket behind everything else the loop had to do
    (and their round trips grew with the load); here every reply waiting is read at once.
    Cookies are a random per-client prefix and a counter: unique for rtpengine's reply cache
    (which answers a repeated cookie with the cached reply) without a call to the OS's random
    source per request.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 22230,
        *,
        timeout_s: float = 1.0,
        retries: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[bytes, _Request] = {}
        self._cookie_prefix = secrets.token_hex(6)
        self._cookies = itertools.count(1)
        # Told of each request: (command, seconds, timed out). Set by whoever keeps metrics.
        self.observe: Callable[[str, float, bool], None] | None = None

    @classmethod
    def from_settings(cls, settings: RtpengineSettings) -> RtpengineClient:
        return cls(settings.ng_host, settings.ng_port, timeout_s=settings.timeout_s)

    async def connect(self) -> None:
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        if self._sock is not None:
            return  # another request connected while we resolved
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(address)  # connected: only the daemon's datagrams are received
            loop.add_reader(sock.fileno(), self._read_ready)
        except BaseException:
            sock.close()
            raise
        self._sock, self._loop = sock, loop

    async def close(self) -> None:
        sock, loop = self._sock, self._loop
        self._sock = self._loop = None
        if sock is not None:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(sock.fileno())
            sock.close()
        for request in self._pending.values():
            if request.timer is not None:
                request.timer.cancel()
            if not request.future.done():
                request.future.set_exception(RtpengineUnavailable("rtpengine client closed"))
        self._pending.clear()

    async def __aenter__(self) -> RtpengineClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- transport -------------------------------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_MAX_REPLIES_PER_WAKEUP):
            try:
                data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP "port unreachable" while the daemon is down; the request timeout reports
                # it. The error is consumed by this call: keep reading.
                log.debug("rtpengine ng socket error: %s", exc)
                continue
            self._on_datagram(data)

    def _send(self, packet: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(2):  # a pending ICMP error fails one send, and is consumed by it
            try:
                sock.send(packet)
                return
            except (BlockingIOError, InterruptedError):
                log.debug("rtpengine ng socket full; the retry timer re-sends")
                return
            except OSError as exc:
                log.debug("rtpengine ng socket error: %s", exc)

    def _on_datagram(self, data: bytes) -> None:
        cookie, sep, body = data.partition(b" ")
        request = self._pending.get(cookie)
        if not sep or request is None or request.future.done():
            # A late reply to a request we gave up on, or a duplicate after a retry.
            log.debug("rtpengine reply with unknown cookie %r dropped", cookie[:40])
            return
        future = request.future
        try:
            reply = bdecode(body)
        except BencodeError as exc:
            future.set_exception(RtpengineProtocolError(f"undecodable reply: {exc}"))
            return
        if not isinstance(reply, dict):
            future.set_exception(RtpengineProtocolError("reply is not a dictionary"))
            return
        future.set_result(reply)

    def _attempt_over(self, cookie: bytes) -> None:
        request = self._pending.get(cookie)
        if request is None or request.future.done():
            return
        request.timer = None
        if request.attempts_left > 0:
            log.debug("rtpengine %s: no reply, sending again", request.command)
            self._arm(cookie, request)
            return
        request.future.set_exception(
            RtpengineUnavailable(
                f"rtpengine at {self.host}:{self.port} did not answer {request.command!r} "
                f"within {self.timeout_s:g}s"
            )
        )

    def _arm(self, cookie: bytes, request: _Request) -> None:
        assert self._loop is not None
        request.attempts_left -= 1
        self._send(request.packet)
        request.timer = self._loop.call_later(request.attempt_s, self._attempt_over, cookie)

    async def request(self, command: str, **params: Any) -> dict[str, Any]:
        """Send one ng command and return the reply dictionary.

        Keyword names are converted with `_` -> `-`. Raises `RtpengineError` on
        `result: error` and `RtpengineUnavailable` when nothing answers in time.
        """
        await self.connect()
        assert self._loop is not None
        message = {"command": command, **_ng_params(params)}
        cookie = f"{self._cookie_prefix}{next(self._cookies):x}".encode("ascii")
        attempts = 1 + max(0, self.retries)
        request = _Request(
            self._loop.create_future(),
            command,
            cookie + b" " + bencode(message),
            attempts,
            self.timeout_s / attempts,
        )
        self._pending[cookie] = request
        started = time.monotonic()
        try:
            self._arm(cookie, request)
            reply = await request.future
        except RtpengineUnavailable:
            if self.observe is not None:
                self.observe(command, time.monotonic() - started, True)
            raise
        else:
            if self.observe is not None:
                self.observe(command, time.monotonic() - started, False)
        finally:
            self._pending.pop(cookie, None)
            if request.timer is not None:
                request.timer.cancel()
        result = reply.get("result")
        if result == "error":
            raise RtpengineError(command, "error", str(reply.get("error-reason", "")))
        if result not in ("ok", "pong"):
            raise RtpengineProtocolError(f"{command!r}: unexpected result {result!r}")
        if "warning" in reply:
            log.warning("rtpengine %s: %s", command, reply["warning"])
        return reply

    # -- commands --------------------------------------------------------------------------

    async def ping(self) -> None:
        reply = await self.request("ping")
        if reply.get("result") != "pong":
            raise RtpengineProtocolError(f"ping answered with {reply.get('result')!r}")

    async def offer(
        self, call_id: str, from_tag: str, sdp: str, *, flags: Iterable[str] = (), **params: Any
    ) -> str:
        """Offer SDP from `from_tag`; returns the SDP to send to the other party."""
        reply = await self.request(
            "offer", call_id=call_id, from_tag=from_tag, sdp=sdp, flags=list(flags), **params
        )
        return _sdp_of(reply, "offer")

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: str,
        *,
        flags: Iterable[str] = (),
        **params: Any,
    ) -> str:
        """Answer SDP from `to_tag`; returns the SDP to send back to `from_tag`'s party."""
        reply = await self.request(
            "answer",
            call_id=call_id,
            from_tag=from_tag,
            to_tag=to_tag,
            sdp=sdp,
            flags=list(flags),
            **params,
        )
        return _sdp_of(reply, "answer")

    async def delete(
        self,
        call_id: str,
        from_tag: str | None = None,
        to_tag: str | None = None,
        *,
        fatal: bool = False,
        delete_delay: int | None = 0,
        **params: Any,
    ) -> dict[str, Any]:
        """End the call (or one branch) and return its statistics.

        With `fatal`, an unknown call is an `RtpengineError` (otherwise a logged warning).
        `delete_delay=0` (our default) frees the call at once; rtpengine's own default (30 s)
        keeps relaying media and keeps the call-id alive after the delete. `None` leaves the
        daemon's default.
        """
        flags = ["fatal"] if fatal else []
        return await self.request(
            "delete",
            call_id=call_id,
            from_tag=from_tag,
            to_tag=to_tag,
            flags=flags,
            delete_delay=delete_delay,
            **params,
        )

    async def query(self, call_id: str, from_tag: str | None = None) -> dict[str, Any]:
        return await self.request("query", call_id=call_id, from_tag=from_tag)

    async def play_media(
        self,
        call_id: str,
        from_tag: str,
        *,
        file: str | Path,
        repeat_times: int | None = None,
    ) -> float | None:
        """Play `file` *to* the party of `from_tag`; returns its duration in seconds if known.

        The path is read by the rtpengine daemon, so it must be absolute (or relative to the
        daemon's working directory) and readable by it.
        """
        reply = await self.request(
            "play media",
            call_id=call_id,
            from_tag=from_tag,
            file=str(file),
            repeat_times=repeat_times,
        )
        duration_ms = reply.get("duration")
        return duration_ms / 1000 if isinstance(duration_ms, int) and duration_ms >= 0 else None

    async def stop_media(self, call_id: str, from_tag: str) -> None:
        await self.request("stop media", call_id=call_id, from_tag=from_tag)

    async def block_media(self, call_id: str, from_tag: str) -> None:
        """Stop forwarding audio *sent by* `from_tag` (DTMF is still logged and relayed)."""
        await self.request("block media", call_id=call_id, from_tag=from_tag, flags=["directional"])

    async def unblock_media(self, call_id: str, from_tag: str) -> None:
        await self.request(
            "unblock media", call_id=call_id, from_tag=from_tag, flags=["directional"]
        )

    async def bridge(
        self,
        call_id: str,
        offer_tag: str,
        offer_sdp: str,
        answer_tag: str,
        answer_sdp: str,
        **params: Any,
    ) -> tuple[str, str]:
        """Replace the placeholder side with the party that just answered (step 4).

        `offer_tag`/`offer_sdp`: the party whose placeholder stood in the first offer (the
        visitor) with the SDP it just answered with. `answer_tag`/`answer_sdp`: the party that
        answered first (the owner) with its last SDP. Returns (SDP for `answer_tag`'s party,
        SDP for `offer_tag`'s party); with `port latching` their ports equal the ones already
        sent, so no re-INVITE is needed (the engine should still compare and re-INVITE if not).
        """
        flags = ["port latching"]
        for_answerer = await self.offer(call_id, offer_tag, offer_sdp, flags=flags, **params)
        for_offerer = await self.answer(
            call_id, offer_tag, answer_tag, answer_sdp, flags=flags, **params
        )
        return for_answerer, for_offerer


def _sdp_of(reply: Mapping[str, Any], command: str) -> str:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise RtpengineProtocolError(f"{command!r} reply has no SDP")
    return sdp


def _media_port(sdp: str) -> int | None:
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            port = line.split()[1]
            return int(port) if port.isdigit() else None
    return None


def _connection_address(sdp: str) -> str:
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            return line.split()[2]
    return "0.0.0.0"


def _transcode_to(codecs: Iterable[str], *, strip: bool) -> dict[str, BValue]:
    """ng `codec` flags: offer `codecs` (and RFC 4733 events) whatever the party offered,
    transcoding where needed; with `strip`, only them, in their order."""
    wanted: list[BValue] = [*codecs, "telephone-event"]
    flags: dict[str, BValue] = {"transcode": wanted}
    if strip:
        flags["strip"] = ["all"]
    return flags


@dataclass
class AnchoredCallback:
    """The module doc's steps 1-5 for one callback, with the tags kept in one place.

        media = AnchoredCallback(client, call_id=request_id)
        invite_owner_with = await media.offer_for_owner()
        await media.owner_answered(owner_sdp)
        await media.play_to_owner(prompt.path)      # digits: DTMF log, source_tag == "owner"
        invite_visitor_with = media.sdp_for_visitor
        reinvite_owner_with = await media.visitor_answered(visitor_sdp)  # None: nothing to do
        await media.delete()

    `call_id` must be unique per callback and plain (letters, digits, `-`, `_`), because
    rtpengine copies it unescaped into the DTMF log's JSON.
    """

    client: RtpengineClient
    call_id: str
    owner_tag: str = "owner"
    visitor_tag: str = "visitor"
    # Offered to the trunk, in order of preference (telephone-event is always added).
    trunk_codecs: tuple[str, ...] = DEFAULT_TRUNK_CODECS
    # Offer the owner's phone G.722 first (when a trunk may carry it): two wide-band phones
    # then talk G.722 end to end, and rtpengine transcodes only where the callee cannot.
    wideband: bool = False
    _sdp_for_owner: str | None = field(default=None, init=False, repr=False)
    _owner_sdp: str | None = field(default=None, init=False, repr=False)
    _sdp_for_visitor: str | None = field(default=None, init=False, repr=False)

    async def offer_for_owner(self, **params: Any) -> str:
        """SDP for the INVITE to the owner (the visitor is a placeholder until it answers)."""
        self._sdp_for_owner = await self.client.offer(
            self.call_id, self.visitor_tag, placeholder_sdp(wideband=self.wideband), **params
        )
        return self._sdp_for_owner

    async def owner_answered(self, owner_sdp: str, **params: Any) -> None:
        """Complete the owner's offer/answer, then prepare the trunk's offer: the owner's side
        offered again, towards the visitor, with the trunk's codecs (rtpengine transcodes when
        the two ends settle on different ones) and an origin of ours (nothing of the owner's
        phone reaches the carrier)."""
        self._owner_sdp = owner_sdp
        await self.client.answer(
            self.call_id, self.visitor_tag, self.owner_tag, owner_sdp, **params
        )
        await self.offer_to_trunk(self.trunk_codecs, **params)

    async def offer_to_trunk(self, codecs: tuple[str, ...], **params: Any) -> str:
        """(Re)make the trunk's offer with `codecs` (a trunk's own list, e.g. the next trunk's
        on failover); later re-offers towards the visitor use them too. Returns the SDP."""
        if self._owner_sdp is None:
            raise RuntimeError("the owner has not answered yet")
        for_visitor = await self.client.offer(
            self.call_id,
            self.owner_tag,
            self._owner_sdp,
            to_tag=self.visitor_tag,
            flags=["port latching"],
            replace=["origin", "session-connection"],
            codec=_transcode_to(codecs, strip=True),
            **params,
        )
        self.trunk_codecs = codecs
        self._sdp_for_visitor = own_origin(
            for_visitor, random.getrandbits(31), _connection_address(for_visitor)
        )
        return self._sdp_for_visitor

    @property
    def owner_codecs(self) -> tuple[str, ...]:
        """What the owner's phone was offered, in order (telephone-event aside)."""
        return WIDEBAND_OWNER_CODECS if self.wideband else OWNER_CODECS

    @property
    def sdp_for_visitor(self) -> str:
        """SDP for the INVITE to the visitor; available once the owner answered."""
        if self._sdp_for_visitor is None:
            raise RuntimeError("the owner has not answered yet")
        return self._sdp_for_visitor

    async def play_to_owner(self, file: str | Path) -> float | None:
        """Start a prompt (replacing one still playing); returns its duration in seconds.

        rtpengine 10.5 sends no event when playback ends: time `PromptFinished` from the
        returned duration (or the WAV's own duration when None).
        """
        return await self.client.play_media(self.call_id, self.owner_tag, file=file)

    async def stop_prompt(self) -> None:
        """Stop the prompt; a prompt that already ended is not an error."""
        try:
            await self.client.stop_media(self.call_id, self.owner_tag)
        except RtpengineError as exc:
            if "not currently playing" not in exc.reason.lower():
                raise

    async def visitor_answered(self, visitor_sdp: str, **params: Any) -> str | None:
        """Bridge: the visitor's answer to the trunk's offer. Returns SDP to re-INVITE the
        owner with, or None when its port is unchanged (the expected outcome, see `port
        latching` in the module doc)."""
        if self._owner_sdp is None:
            raise RuntimeError("the owner has not answered yet")
        for_owner = await self.client.answer(
            self.call_id,
            self.owner_tag,
            self.visitor_tag,
            visitor_sdp,
            flags=["port latching"],
            replace=["origin", "session-connection"],
            **params,
        )
        previous = self._sdp_for_owner or ""
        if _media_port(for_owner) == _media_port(previous):
            return None
        # A re-INVITE must keep the session's o= line with a higher version (RFC 3264 s. 8).
        self._sdp_for_owner = continue_origin(for_owner, previous)
        return self._sdp_for_owner

    async def hold_owner_audio(self) -> None:
        """Keep the owner's audio from the carrier until the visitor answers (a carrier's
        early media would otherwise let the visitor's side hear the owner before the call)."""
        await self.client.block_media(self.call_id, self.owner_tag)

    async def release_owner_audio(self) -> None:
        await self.client.unblock_media(self.call_id, self.owner_tag)

    def _other(self, tag: str) -> str:
        return self.visitor_tag if tag == self.owner_tag else self.owner_tag

    async def reoffer_from(self, tag: str, offer_sdp: str, **params: Any) -> str:
        """A party re-INVITEd (hold, resume, a new address): its offer goes through rtpengine,
        which keeps the direction (`sendonly` stays `sendonly` towards the other party) and
        its own ports (`port latching`). Returns the SDP to re-offer to the other party."""
        return await self.client.offer(
            self.call_id,
            tag,
            offer_sdp,
            to_tag=self._other(tag),
            flags=["port latching"],
            replace=["origin", "session-connection"],
            # What the other phone may not speak, rtpengine translates.
            codec=_transcode_to(
                self.trunk_codecs if tag == self.owner_tag else self.owner_codecs, strip=False
            ),
            **params,
        )

    async def reanswer_to(self, tag: str, answer_sdp: str, **params: Any) -> str:
        """The other party's answer to `reoffer_from(tag, ...)`; returns the SDP to answer the
        re-INVITE of `tag`'s party with (its direction mirrors the offer, RFC 3264 6.1)."""
        return await self.client.answer(
            self.call_id,
            tag,
            self._other(tag),
            answer_sdp,
            flags=["port latching"],
            replace=["origin", "session-connection"],
            **params,
        )

    async def delete(self) -> None:
        """Release the ports; an already gone call is not an error (it may have timed out)."""
        await self.client.delete(self.call_id)
