"""`RegistrationAgent`: keep one account registered with a trunk's registrar (RFC 3261 §10).

sippy 2.5.0 ships `SipRegistrationAgent`, but it refreshes only when the binding has already
expired, answers a 407 with an `Authorization` header (RFC 3261 wants `Proxy-Authorization`),
retries every 60 s without limit or backoff, and waits 32 s for a registrar that is gone. This
agent, on the sippy thread like every sippy object:

- answers a 401/407 challenge (at most two in a row, so a wrong password is not a loop);
- refreshes at 80 % of the granted expiry, so the binding never lapses between refreshes;
- gives up on a REGISTER after `timeout_s` (abandoning sippy's own transaction, whose
  retransmissions would otherwise reach a registrar that restarts meanwhile), then retries
  with a doubling backoff from `retry_min_s` to `retry_max_s`;
- publishes its state as an immutable `RegistrationState`, readable from any thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipConf import SipConf
from sippy.SipContact import SipContact
from sippy.SipExpires import SipExpires
from sippy.SipFrom import SipFrom
from sippy.SipHeader import SipHeader
from sippy.SipRequest import SipRequest
from sippy.SipTo import SipTo
from sippy.SipURL import SipURL
from sippy.Time.Timeout import Timeout

from callnow.telephony.sip.headers import Credentials

log = logging.getLogger(__name__)

# Challenges answered in a row before the attempt counts as failed (a stale nonce needs two).
MAX_CHALLENGES = 2
# Part of the granted expiry after which the binding is refreshed.
REFRESH_AT = 0.8


@dataclass(frozen=True)
class RegistrationSpec:
    """One account at one registrar (built from a trunk's settings)."""

    name: str
    registrar: tuple[str, int]  # an IP address (resolved on asyncio) and port
    user: str  # user part of the address of record
    domain: str  # host part of the address of record and of the request URI
    credentials: Credentials | None
    expires_s: int = 600
    timeout_s: float = 8.0
    retry_min_s: float = 2.0
    retry_max_s: float = 300.0


@dataclass(frozen=True)
class RegistrationState:
    """What health shows of one trunk's registration: no secrets, no addresses."""

    name: str
    registered: bool
    last_error: str | None = None
    expires_at: datetime | None = None


class RegistrationAgent:
    """Create, then `start()`; `start`/`stop` and every callback on the sippy thread."""

    def __init__(
        self,
        global_config: dict[str, Any],
        spec: RegistrationSpec,
        on_change: Callable[[RegistrationState], None] | None = None,
    ) -> None:
        self.spec = spec
        self._config = global_config
        self._on_change = on_change
        self.state = RegistrationState(spec.name, registered=False)
        self._request: Any = None
        self._transaction: Any = None
        self._timer: Any = None  # the next REGISTER (refresh or retry)
        self._deadline: Any = None  # the current REGISTER's own timeout
        self._challenges = 0
        self._backoff_s = 0.0
        self._stopped = False

    def start(self) -> None:
        spec = self.spec
        aor = SipURL(username=spec.user, host=spec.domain)
        contact_url = SipURL(username=spec.user, host=SipConf.my_address, port=SipConf.my_port)
        contact = SipContact(address=SipAddress(url=contact_url))
        fr0m = SipFrom(address=SipAddress(url=aor.getCopy()))
        fr0m.genTag()
        self._request = SipRequest(
            method="REGISTER",
            ruri=SipURL(host=spec.domain),
            fr0m=fr0m,
            to=SipTo(address=SipAddress(url=aor.getCopy())),
            contact=contact,
            callid=SipCallId(),
            target=(spec.registrar, "udp"),
        )
        self._request.appendHeader(
            SipHeader(name="expires", body=SipExpires(number=spec.expires_s))
        )
        self._send()

    def stop(self) -> None:
        """Stop refreshing (the binding lapses at the registrar; no un-REGISTER is sent, so a
        stopping engine never waits for a registrar that may be gone)."""
        self._stopped = True
        self._abandon()
        self._cancel_timer()

    # -- one attempt ----------------------------------------------------------------------

    def _send(self, *_: Any) -> None:
        self._timer = None
        if self._stopped:
            return
        request = self._request
        request.getHFBody("via").genBranch()
        request.getHFBody("cseq").incCSeqNum()
        tm = self._config["_sip_tm"]
        self._transaction = tm.newTransaction(request, self._got_reply)
        self._deadline = Timeout(self._timed_out, self.spec.timeout_s)

    def _got_reply(self, resp: Any, *_: Any) -> None:
        if self._stopped or resp.scode < 200:
            return
        self._transaction = None
        self._cancel_deadline()
        if 200 <= resp.scode < 300:
            self._registered(resp)
        elif resp.scode in (401, 407) and self._answer_challenge(resp):
            return
        else:
            self._failed(f"{resp.scode} {resp.reason}"[:100])

    def _answer_challenge(self, resp: Any) -> bool:
        creds = self.spec.credentials
        challenge_name, answer_name = (
            ("www-authenticate", "authorization")
            if resp.scode == 401
            else ("proxy-authenticate", "proxy-authorization")
        )
        if creds is None or self._challenges >= MAX_CHALLENGES or not resp.countHFs(challenge_name):
            return False
        challenge = resp.getHFBody(challenge_name)
        supported, qop = challenge.supportedAlgorithm()
        if not supported:
            return False
        request = self._request
        answer = challenge.genAuthHF(
            creds.username, creds.password, "REGISTER", str(request.ruri), qop=qop
        )
        for name in ("authorization", "proxy-authorization"):
            for header in request.getHFs(name):
                request.removeHeader(header)
        request.appendHeader(SipHeader(name=answer_name, body=answer))
        self._challenges += 1
        self._send()
        return True

    def _registered(self, resp: Any) -> None:
        granted = self._granted_expiry(resp)
        self._challenges = 0
        self._backoff_s = 0.0
        if granted <= 0:  # the registrar removed the binding: register again soon
            self._failed("registrar granted no expiry")
            return
        at = datetime.now(UTC) + timedelta(seconds=granted)
        self._publish(RegistrationState(self.spec.name, True, None, at))
        self._timer = Timeout(self._send, max(1.0, granted * REFRESH_AT))

    def _granted_expiry(self, resp: Any) -> int:
        """Our Contact's `expires` in the 200, else its Expires header, else what we asked."""
        try:
            ours = self._request.getHFBody("contact").getUrl()
            for contact in resp.getHFBodys("contact"):
                url = contact.getUrl()
                if url.username == ours.username and "expires" in contact.address.params:
                    return int(contact.address.params["expires"])
            if resp.countHFs("expires"):
                return int(resp.getHFBody("expires").getNum())
        except (ValueError, TypeError, AttributeError):
            log.info("trunk %s: unreadable expiry in the registrar's 200", self.spec.name)
        return self.spec.expires_s

    def _timed_out(self) -> None:
        self._deadline = None
        if self._stopped:
            return
        self._abandon()
        self._failed(f"no answer from the registrar within {self.spec.timeout_s:g} s")

    def _failed(self, error: str) -> None:
        self._challenges = 0
        spec = self.spec
        self._backoff_s = min(spec.retry_max_s, max(spec.retry_min_s, self._backoff_s * 2))
        log.warning(
            "trunk %s: registration failed (%s); next try in %.0f s",
            spec.name,
            error,
            self._backoff_s,
        )
        self._publish(RegistrationState(spec.name, False, error, None))
        self._timer = Timeout(self._send, self._backoff_s)

    # -- housekeeping -----------------------------------------------------------------------

    def _publish(self, state: RegistrationState) -> None:
        if state.registered != self.state.registered:
            log.info(
                "trunk %s: %s", state.name, "registered" if state.registered else "unregistered"
            )
        self.state = state
        if self._on_change is not None:
            self._on_change(state)

    def _abandon(self) -> None:
        """Forget the REGISTER in flight: no more retransmissions, no reply handled."""
        self._cancel_deadline()
        t, self._transaction = self._transaction, None
        if t is None:
            return
        for name in ("teA", "teB"):
            timer = getattr(t, name, None)
            if timer is not None:
                timer.cancel()
        tm = self._config.get("_sip_tm")
        if tm is not None and t.tid is not None:
            tm.tclient.pop(t.tid, None)
        t.cleanup()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
