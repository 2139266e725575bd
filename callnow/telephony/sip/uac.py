"""The sippy side of one outbound leg. Everything here runs on the sippy thread only.

`UacDriver` wraps a sippy `UA` in UAC role, translates sippy's CCEvents into our dataclass
events and hands them to `emit` (which posts them to the asyncio loop). It also owns the ring
timer: sippy's own `no_reply`/`expire` timers report through the same CCEventDisconnect as a
remote hang-up, so a timer of our own keeps "no answer" unambiguous.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventInfo,
    CCEventRedirect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.MsgBody import MsgBody
from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipHeader import SipHeader
from sippy.SipPAssertedIdentity import SipPAssertedIdentity
from sippy.SipTo import SipTo
from sippy.SipURL import SipURL
from sippy.Time.Timeout import Timeout
from sippy.UA import UA
from sippy.UacStateTrying import UacStateTrying

from callnow.telephony import sdp as sdp_edit
from callnow.telephony.sip.dtmf import digit_from_info
from callnow.telephony.sip.events import (
    Answered,
    Digit,
    Ended,
    EndedBy,
    Failed,
    FailureCause,
    HangupPrepared,
    LegEvent,
    RemoteSdpChanged,
    Ringing,
    cause_for,
)
from callnow.telephony.sip.headers import CallerId, Credentials, QuotedNameAddress
from callnow.telephony.sip.patches import answer_sip_update

log = logging.getLogger(__name__)

# The CSeq of a prepared BYE is this far above the dialog's next one, so it stays above any
# re-INVITE the live dialog sends before the BYE is ever needed (RFC 3261 12.2.1.1: CSeq only
# has to grow, not by one).
PREPARED_BYE_CSEQ_GAP = 1000

# Challenges answered per leg. One proxy (407) plus one registrar (401) is legitimate; a peer
# alternating 401/407 forever would otherwise make sippy re-send the INVITE forever.
MAX_AUTH_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class DialSpec:
    """Everything needed to send the INVITE; validated by the caller (SipStack.dial)."""

    call_id: str
    request_uri: SipURL
    next_hop: tuple[str, int]
    caller: CallerId
    sdp: str
    ring_timeout: float
    credentials: Credentials | None = None
    asserted_identity: CallerId | None = None
    from_domain: str | None = None
    extra_headers: tuple[SipHeader, ...] = ()
    # False: a peer's re-INVITE is answered at once from our last SDP (direction per RFC 3264).
    # True: the leg's owner answers it (`Leg.answer_update`) after asking the media relay and
    # the other leg; `update_answer_s` later the local answer is sent anyway.
    defer_updates: bool = False
    update_answer_s: float = 8.0
    # No response at all (not even 100 Trying) this long: the leg fails as UNAVAILABLE, so a
    # dead trunk can be failed over long before sippy's own 32 s transaction timeout.
    setup_timeout: float | None = None


def _when(rtime: Any = None) -> datetime:
    realt = getattr(rtime, "realt", None)
    if realt is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(realt, UTC)


def _header_values(message: Any, name: str) -> tuple[str, ...]:
    """The raw values of every `name` header of a sippy message (as received)."""
    return tuple(str(header.body) for header in message.getHFs(name))


def _sdp_text(body: Any) -> str | None:
    if body is None:
        return None
    text = body.localStr() if hasattr(body, "localStr") else str(body)
    return str(text)


class _CallNowUA(UA):
    """sippy's UA with two changes to how it answers a 401/407 challenge.

    - At most MAX_AUTH_ATTEMPTS challenges are answered per leg.
    - The authenticated INVITE is sent on the next loop pass instead of from inside the
      response callback. sippy's transaction layer sends the ACK of the 401/407 only after
      that callback returns, so the new INVITE used to overtake the ACK; strict peers (and
      SIPp scenarios) expect the ACK first.
    """

    auth_attempts = 0
    # Told after an authenticated INVITE left: it has a new branch and CSeq to CANCEL.
    on_invite_sent: Callable[[], None] | None = None
    # Told of every response, before sippy handles it (the peer is alive).
    on_response: Callable[[Any], None] | None = None

    def recvResponse(self, resp: Any, tr: Any) -> None:
        if self.on_response is not None:
            self.on_response(resp)
        super().recvResponse(resp, tr)

    def processChallenge(
        self, resp: Any, cseq: int, ch_hfname: str, auth_hfname: str, extra_headers: Any
    ) -> bool:
        # The same preconditions as UA.processChallenge, checked now so the response is
        # either swallowed (we will retry) or reported as a failure right away.
        if self.auth_attempts >= MAX_AUTH_ATTEMPTS:
            return False
        if self.username is None or self.password is None:
            return False
        if self.reqs[cseq].countHFs(auth_hfname) != 0:
            return False  # our credentials were rejected: fail, never loop
        if not any(ch.supportedAlgorithm()[0] for ch in resp.getHFBodys(ch_hfname)):
            return False
        self.auth_attempts += 1
        Timeout(self._send_authenticated, 0, 1, resp, cseq, ch_hfname, auth_hfname, extra_headers)
        return True

    def _send_authenticated(self, *args: Any) -> None:
        # Hung up (Cancelling) or dead meanwhile: the new INVITE must not go out.
        if isinstance(self.state, UacStateTrying) and not self.state.dead:
            super().processChallenge(*args)
            if self.on_invite_sent is not None:
                self.on_invite_sent()


class _TryEvent(CCEventTry):
    """CCEventTry that finishes the UA's setup the way sippy's defaults cannot.

    sippy builds the request URI from the next hop and the called number only (URI parameters
    are lost) and renders display names unquoted; `onUacSetupComplete` is its hook to adjust
    the UA after setup and before the INVITE is generated.
    """

    spec: DialSpec

    def onUacSetupComplete(self, uac: UA) -> None:
        spec = self.spec
        uac.rTarget = spec.request_uri.getCopy()
        to_url = spec.request_uri.getCopy()
        to_url.transport = None
        uac.rUri = SipTo(address=SipAddress(url=to_url, hadbrace=True))
        from_address = uac.lUri.getUri()
        if spec.from_domain:
            from_address.url.host = spec.from_domain
            from_address.url.port = None
        uac.lUri.address = QuotedNameAddress(
            name=spec.caller.name,
            url=from_address.url,
            params=from_address.params,
            params_order=from_address.params_order,
        )
        uac.lContact.getUri().name = None


class UacDriver:
    """One outbound INVITE dialog. Create, then `start()`; all methods on the sippy thread."""

    def __init__(
        self,
        global_config: dict[str, Any],
        spec: DialSpec,
        emit: Callable[[LegEvent | HangupPrepared], None],
        on_dead: Callable[[UacDriver], None],
    ) -> None:
        self.spec = spec
        self._config = global_config
        self._emit = emit
        self._on_dead = on_dead
        self._ua: UA | None = None
        self._ring_timer: Any = None
        self._setup_timer: Any = None
        self.answered = False
        self.finished = False  # a terminal event (Failed/Ended) was emitted
        self._reinvite_done: Callable[[str | None, BaseException | None], None] | None = None
        # A peer's re-INVITE (or UPDATE) waiting for `answer_update`, and the timer that
        # answers it anyway; for an UPDATE, its request (answered by `answer_sip_update`).
        self._update_pending = False
        self._update_timer: Any = None
        self._update_request: Any = None
        # Our SDP as the peer last accepted it, and the one our re-INVITE in flight offers.
        self._local_sdp = spec.sdp
        self._offered_sdp: str | None = None
        # Our address as the INVITE's Via and Contact show it (for the prepared BYE).
        self._local_address: Any = None
        # The Diversion and History-Info values of the latest final response to our INVITE.
        self._diversion: tuple[str, ...] = ()
        self._history_info: tuple[str, ...] = ()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        spec = self.spec
        creds = spec.credentials
        ua = _CallNowUA(
            self._config,
            event_cb=self._on_sippy_event,
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            nh_address=spec.next_hop,
            dead_cbs=(self._ua_dead,),
        )
        self._ua = ua
        ua.on_invite_sent = self._prepare_cancel
        ua.on_response = self._on_response
        body = MsgBody(spec.sdp)
        event = _TryEvent(
            (
                SipCallId(spec.call_id),
                spec.caller.number,
                spec.request_uri.username,
                body,
                None,
                spec.caller.name,
            )
        )
        event.spec = spec
        headers = list(spec.extra_headers)
        if spec.asserted_identity is not None:
            headers.append(self._pai_header(spec.asserted_identity))
        # 2.5.0: extra headers are an attribute of the event, not a constructor argument.
        event.extra_headers = tuple(headers) if headers else None
        ua.recvEvent(event)
        self._ring_timer = Timeout(self._ring_timeout, spec.ring_timeout)
        if spec.setup_timeout is not None:
            self._setup_timer = Timeout(self._setup_timed_out, spec.setup_timeout)
        self._prepare_cancel()

    def _pai_header(self, who: CallerId) -> SipHeader:
        # Host defaults to our own address (rendered when sent); no port, like the From URI.
        url = SipURL(username=who.number, host=self.spec.from_domain or None)
        url.port = None
        address = QuotedNameAddress(name=who.name, url=url)
        return SipHeader(name="p-asserted-identity", body=SipPAssertedIdentity(address=address))

    def _on_response(self, resp: Any) -> None:
        """Every response, before sippy handles it: the peer is alive; and the divert headers
        of an answer to our INVITE, for the `Answered` event sippy's handling emits."""
        self._cancel_setup_timer()
        if self.answered:
            return
        try:
            code = resp.getSCode()[0]
            method = resp.getHFBody("cseq").getCSeqMethod()
            if method == "INVITE" and 200 <= code < 300:
                self._diversion = _header_values(resp, "diversion")
                self._history_info = _header_values(resp, "history-info")
        except Exception:
            # Only a hint for the engine: a header sippy cannot read must not fail the call.
            log.exception("could not read the answer's headers on %s", self.spec.call_id)

    def _ua_dead(self, ua: UA) -> None:
        self._ua = None
        self._on_dead(self)

    # -- actions from the engine ---------------------------------------------------------

    def hangup(self, reason: str = "") -> None:
        """CANCEL if not answered yet, BYE if answered; emits the terminal event itself."""
        if self.finished:
            return
        self._cancel_ring_timer()
        if self.answered:
            self._finish(Ended(by=EndedBy.LOCAL, at=_when(), reason=reason or "local hangup"))
        else:
            self._finish(
                Failed(
                    code=487, reason=reason or "Cancelled", cause=FailureCause.CANCELLED, at=_when()
                )
            )
        self._disconnect()

    def reinvite(self, sdp: str, done: Callable[[str | None, BaseException | None], None]) -> None:
        """Send a re-INVITE with `sdp`; `done(remote_sdp, error)` is called with the outcome."""
        if not self.answered or self.finished or self._ua is None:
            raise RuntimeError("re-INVITE needs an answered, live leg")
        if self._reinvite_done is not None:
            raise RuntimeError("a re-INVITE is already in progress on this leg")
        if self._ua.lSDP is None:
            # sippy forgets our SDP when a re-INVITE of ours fails (a 491 in a glare); it
            # needs it to compare the next offer with.
            self._ua.lSDP = MsgBody(self._local_sdp)
        self._reinvite_done = done
        self._ua.recvEvent(CCEventUpdate(MsgBody(sdp)))
        self._offered_sdp = sdp

    # -- sippy events ---------------------------------------------------------------------

    def _on_sippy_event(self, event: Any, ua: UA) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            log.debug("ignored sippy event %s on %s", event, self.spec.call_id)
            return
        handler(self, event)

    def _on_ring(self, event: CCEventRing) -> None:
        code, reason, body = event.getData()
        if self.finished or self.answered or code <= 100:
            return
        self._emit(
            Ringing(code=code, reason=reason, at=_when(event.rtime), early_sdp=_sdp_text(body))
        )

    def _on_connect(self, event: CCEventConnect) -> None:
        body = event.getData()[2]
        if self.finished:
            return
        if not self.answered:
            self.answered = True
            self._cancel_ring_timer()
            self._prepare_bye()  # before the answer: whoever hears of it can end the call
            self._emit(
                Answered(
                    sdp=_sdp_text(body),
                    at=_when(event.rtime),
                    diversion=self._diversion,
                    history_info=self._history_info,
                )
            )
        elif self._reinvite_done is not None:
            done, self._reinvite_done = self._reinvite_done, None
            if self._offered_sdp is not None:
                self._local_sdp, self._offered_sdp = self._offered_sdp, None
            done(_sdp_text(body), None)

    def _on_fail(self, event: CCEventFail | CCEventRedirect) -> None:
        code, reason = event.getData()[:2]
        if self.finished:
            return
        if self.answered:
            # A failed re-INVITE; sippy keeps the dialog unless it was 408/481, in which case
            # a CCEventDisconnect follows and ends the leg.
            if self._reinvite_done is not None:
                done, self._reinvite_done = self._reinvite_done, None
                done(None, ReinviteRejected(code, reason))
            return
        self._cancel_ring_timer()
        self._finish(Failed(code=code, reason=reason, cause=cause_for(code), at=_when(event.rtime)))

    def _on_disconnect(self, event: CCEventDisconnect) -> None:
        if self.finished:
            return
        self._cancel_ring_timer()
        if self.answered:
            self._finish(Ended(by=EndedBy.REMOTE, at=_when(event.rtime), reason="remote hangup"))
        else:
            self._finish(
                Failed(
                    code=487,
                    reason="Disconnected",
                    cause=FailureCause.CANCELLED,
                    at=_when(event.rtime),
                )
            )

    def _on_info(self, event: CCEventInfo) -> None:
        if self.finished:
            return
        found = digit_from_info(event.getData())
        if found is None:
            log.info("INFO without a usable DTMF body on %s", self.spec.call_id)
            return
        digit, duration_ms = found
        self._emit(Digit(digit=digit, at=_when(event.rtime), duration_ms=duration_ms))

    def _on_remote_update(self, event: CCEventUpdate) -> None:
        """The peer re-INVITEd or sent an UPDATE with an offer (RFC 3311): answer now (or let
        the leg's owner answer) and report it; both are answered the same way."""
        ua = self._ua
        if self.finished or ua is None:
            return
        offer = _sdp_text(event.getData())
        request = getattr(event, "sip_update", None)
        if request is not None:
            if self._update_pending:  # its previous offer is still unanswered (RFC 3311 5.2)
                answer_sip_update(ua, request, 500, "Server Internal Error")
                return
            self._update_request = request
        if self.spec.defer_updates:
            self._update_pending = True
            self._update_timer = Timeout(self._update_overdue, self.spec.update_answer_s, 1, offer)
        else:
            self._send_update_answer(self.local_answer(offer))
        self._emit(RemoteSdpChanged(sdp=offer, at=_when(event.rtime)))

    def local_answer(self, offer: str | None) -> str:
        """Our last SDP with the direction RFC 3264 asks for in answer to `offer`."""
        ua = self._ua
        local = _sdp_text(ua.lSDP) if ua is not None and ua.lSDP is not None else None
        body = local or self.spec.sdp
        if not offer:
            return body
        return sdp_edit.with_direction(body, sdp_edit.answer_direction(sdp_edit.direction(offer)))

    def answer_update(self, sdp: str | None, code: int = 200, reason: str = "OK") -> bool:
        """Answer the pending re-INVITE: 2xx with `sdp`, or a failure code (the call goes on).
        False when nothing is pending (answered by the timer, or the leg ended)."""
        if not self._update_pending or self.finished or self._ua is None:
            return False
        if code < 300 and sdp is not None:
            self._send_update_answer(sdp)
        else:
            self._clear_update()
            request, self._update_request = self._update_request, None
            if request is not None:
                answer_sip_update(self._ua, request, code, reason)
            else:
                self._ua.recvEvent(CCEventFail((code, reason)))
        return True

    def _send_update_answer(self, sdp: str) -> None:
        self._clear_update()
        self._local_sdp = sdp
        request, self._update_request = self._update_request, None
        if self._ua is None:
            return
        if request is not None:
            answer_sip_update(self._ua, request, 200, "OK", sdp)
        else:
            self._ua.recvEvent(CCEventConnect((200, "OK", MsgBody(sdp))))

    def _update_overdue(self, offer: str | None) -> None:
        self._update_timer = None
        if self._update_pending and not self.finished:
            log.warning("re-INVITE on %s unanswered: answered locally", self.spec.call_id)
            self._send_update_answer(self.local_answer(offer))

    def _clear_update(self) -> None:
        self._update_pending = False
        if self._update_timer is not None:
            self._update_timer.cancel()
            self._update_timer = None

    # -- requests that end the leg, prepared for crash recovery -------------------------------

    def _prepare_cancel(self) -> None:
        """The CANCEL of the INVITE just sent (sippy builds it with the INVITE)."""
        ua = self._ua
        transaction = getattr(ua, "tr", None)
        cancel = getattr(transaction, "cancel", None)
        if transaction is None or cancel is None:
            return
        try:
            self._local_address = transaction.userv.getSIPaddr()
            message = cancel.localStr(self._local_address, compact=transaction.compact)
            host, port = transaction.address
        except Exception:
            # Only crash recovery needs it: never let it fail a call.
            log.exception("could not prepare the CANCEL of %s", self.spec.call_id)
            return
        self._emit(HangupPrepared("CANCEL", str(message), (str(host), int(port)), _when()))

    def _prepare_bye(self) -> None:
        """The BYE sippy would send now, with a CSeq well above the dialog's (see
        PREPARED_BYE_CSEQ_GAP); the dialog's own CSeq is left as it was."""
        ua = self._ua
        local = self._local_address
        if ua is None or local is None:
            return
        next_cseq = ua.lCSeq
        try:
            ua.lCSeq = next_cseq + PREPARED_BYE_CSEQ_GAP
            bye = ua.genRequest("BYE")
            (host, port), _transport = bye.getTarget()
            message = bye.localStr(local)
        except Exception:
            log.exception("could not prepare the BYE of %s", self.spec.call_id)
            return
        finally:
            ua.lCSeq = next_cseq
        self._emit(HangupPrepared("BYE", str(message), (str(host), int(port)), _when()))

    # -- helpers ----------------------------------------------------------------------------

    def _ring_timeout(self) -> None:
        self._ring_timer = None
        if self.finished or self.answered:
            return
        self._finish(
            Failed(code=408, reason="Ring timeout", cause=FailureCause.NO_ANSWER, at=_when())
        )
        self._disconnect()  # sends CANCEL (deferred by sippy until a provisional response)

    def _setup_timed_out(self) -> None:
        self._setup_timer = None
        if self.finished or self.answered:
            return
        self._cancel_ring_timer()
        self._finish(
            Failed(code=408, reason="No response", cause=FailureCause.UNAVAILABLE, at=_when())
        )
        self._disconnect()

    def _cancel_setup_timer(self) -> None:
        if self._setup_timer is not None:
            self._setup_timer.cancel()
            self._setup_timer = None

    def _cancel_ring_timer(self) -> None:
        self._cancel_setup_timer()
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None

    def _disconnect(self) -> None:
        if self._ua is None or self._ua.isDead():
            return
        try:
            self._ua.recvEvent(CCEventDisconnect())
        except Exception:
            # The leg is already reported over; a sippy error here must not reach the engine
            # as a failed hangup (the peer's own timers end the dialog).
            log.exception("sippy failed to send CANCEL/BYE on %s", self.spec.call_id)

    def _finish(self, event: Failed | Ended) -> None:
        self.finished = True
        self._clear_update()
        if self._reinvite_done is not None:
            done, self._reinvite_done = self._reinvite_done, None
            done(None, ReinviteRejected(481, "Leg ended"))
        self._emit(event)


class ReinviteRejected(RuntimeError):
    """The peer answered our re-INVITE with a non-2xx response (the call goes on)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"re-INVITE rejected: {code} {reason}")
        self.code = code
        self.reason = reason


_HANDLERS: dict[type, Callable[[UacDriver, Any], None]] = {
    CCEventRing: UacDriver._on_ring,
    CCEventConnect: UacDriver._on_connect,
    CCEventFail: UacDriver._on_fail,
    CCEventRedirect: UacDriver._on_fail,
    CCEventDisconnect: UacDriver._on_disconnect,
    CCEventInfo: UacDriver._on_info,
    CCEventUpdate: UacDriver._on_remote_update,
}
