"""What a call leg reports to the engine. Plain frozen dataclasses, delivered on the asyncio loop.

A leg emits, in order: zero or more `Ringing`, then either `Failed` (never answered; terminal)
or `Answered`, then any number of `Digit` / `RemoteSdpChanged`, and finally `Ended` (terminal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FailureCause(StrEnum):
    """Why a leg was never answered; the SIP code is kept next to it for call records."""

    BUSY = "busy"  # 486, 600
    NO_ANSWER = "no_answer"  # ring timeout (we sent CANCEL), 408, 480
    DECLINED = "declined"  # 603
    AUTH_REJECTED = "auth_rejected"  # 401/407 after our credentials, 403
    NOT_FOUND = "not_found"  # 404, 410, 484, 485
    UNAVAILABLE = "unavailable"  # 503 and other 5xx
    CANCELLED = "cancelled"  # we hung up before an answer
    REDIRECTED = "redirected"  # 3xx; never followed (the owner pays for trunk calls)
    ERROR = "error"  # anything else


def cause_for(code: int) -> FailureCause:
    """Classify the final SIP response code of an unanswered INVITE."""
    if code in (486, 600):
        return FailureCause.BUSY
    if code in (408, 480):
        return FailureCause.NO_ANSWER
    if code == 603:
        return FailureCause.DECLINED
    if code in (401, 403, 407):
        return FailureCause.AUTH_REJECTED
    if code in (404, 410, 484, 485):
        return FailureCause.NOT_FOUND
    if code == 487:
        return FailureCause.CANCELLED
    if 300 <= code < 400:
        return FailureCause.REDIRECTED
    if 500 <= code < 600:
        return FailureCause.UNAVAILABLE
    return FailureCause.ERROR


@dataclass(frozen=True, slots=True)
class Ringing:
    """A provisional response above 100 (180 Ringing, 183 Session Progress)."""

    code: int
    reason: str
    at: datetime
    early_sdp: str | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    """2xx to our INVITE; `sdp` is the remote answer (hand it to rtpengine). `diversion` and
    `history_info` are the answer's `Diversion` (RFC 5806) and `History-Info` (RFC 7044)
    header values as received, one per header line (what the engine makes of them is
    `callnow.domain.diversion`'s)."""

    sdp: str | None
    at: datetime
    diversion: tuple[str, ...] = ()
    history_info: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    """Terminal: the leg was never answered."""

    code: int
    reason: str
    cause: FailureCause
    at: datetime


class EndedBy(StrEnum):
    REMOTE = "remote"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Ended:
    """Terminal: an answered leg is over (remote BYE, our hangup, or a dialog failure)."""

    by: EndedBy
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Digit:
    """A DTMF key received as SIP INFO (application/dtmf-relay or application/dtmf)."""

    digit: str
    at: datetime
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteSdpChanged:
    """The peer re-INVITEd with a new offer. Answered already from our last SDP (direction per
    RFC 3264), or, on a leg dialled with `defer_updates`, waiting for `Leg.answer_update`."""

    sdp: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class HangupPrepared:
    """Not a `LegEvent` (the leg's events are not held up by it): the request that ends this
    leg as it stands now, ready to send from any socket: the
    INVITE's CANCEL while it rings, a BYE once answered. Kept outside the process so that
    whoever finds the leg abandoned (the engine that dialled it died) can still end it.

    `message` is the request as it goes on the wire, Via and all (a CANCEL must match its
    INVITE's top Via, so it cannot be rebuilt elsewhere); `target` is where it is sent."""

    method: str
    message: str
    target: tuple[str, int]
    at: datetime


LegEvent = Ringing | Answered | Failed | Ended | Digit | RemoteSdpChanged
TERMINAL_EVENTS = (Failed, Ended)
