"""Telephony adapter events → callback flow events.

The SIP adapter classifies failures more finely than the flow needs (not found, auth rejected,
redirected …); the flow only distinguishes busy, no answer, rejected and failed, and the SIP
code travels on to the call record. A `CallChannel` implementation feeds its legs' events
through these functions before handing them to the engine's event sink.
"""

from __future__ import annotations

from callnow.domain.calls import FailureCause, LegRole
from callnow.domain.diversion import DivertSign, divert_sign
from callnow.domain.flow import (
    Digit,
    DigitSource,
    Event,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRinging,
    OwnerDiverted,
)
from callnow.telephony.dtmf_log import DtmfEvent
from callnow.telephony.sip import events as sip

_CAUSES = {
    sip.FailureCause.BUSY: FailureCause.BUSY,
    sip.FailureCause.NO_ANSWER: FailureCause.NO_ANSWER,
    sip.FailureCause.DECLINED: FailureCause.REJECTED,
}


def flow_cause(cause: sip.FailureCause) -> FailureCause:
    """Everything but busy, no answer and decline is a plain failure to the flow."""
    return _CAUSES.get(cause, FailureCause.FAILED)


def from_sip(role: LegRole, event: sip.LegEvent) -> Event | None:
    """The flow event for one SIP leg event, or None when the flow need not know."""
    match event:
        case sip.Ringing():
            return LegRinging(role)
        case sip.Answered():
            return LegAnswered(role)
        case sip.Failed(code=code, cause=cause):
            return LegFailed(role, flow_cause(cause), code)
        case sip.Ended(by=by):
            return LegEnded(role, by_remote=by is sip.EndedBy.REMOTE)
        case sip.Digit(digit=digit) if role is LegRole.OWNER:
            return Digit(digit, DigitSource.SIP_INFO)
    # Re-INVITEs are the media adapter's business; the visitor's keys mean nothing.
    return None


def owner_divert(event: sip.LegEvent) -> tuple[OwnerDiverted, DivertSign] | None:
    """`OwnerDiverted` (and what showed it) when an owner leg's event shows that the PBX sent
    the call elsewhere: a 181, or an answer with Diversion or History-Info causes."""
    match event:
        case sip.Ringing(code=code):
            sign = divert_sign(code)
        case sip.Answered(diversion=diversion, history_info=history_info):
            code = 200
            sign = divert_sign(code, diversion, history_info)
        case _:
            return None
    return None if sign is None else (OwnerDiverted(code), sign)


def from_rtpengine_dtmf(event: DtmfEvent, owner_tag: str) -> Digit | None:
    """An RFC 4733 key from rtpengine's DTMF log, if the owner's leg (`owner_tag`) sent it."""
    if event.source_tag != owner_tag or event.digit is None:
        return None
    return Digit(event.digit, DigitSource.RFC4733)
