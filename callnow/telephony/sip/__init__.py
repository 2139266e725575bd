"""SIP adapter around sippy 2.5.0: one UDP stack per process, outbound call legs for asyncio.

    async with SipStack("127.0.0.1", 5070) as stack:
        leg = await stack.dial("sip:1001@pbx:5080", caller=CallerId("Mary", "+61290375678"),
                               sdp=offer, ring_timeout=30)
        async for event in leg:   # Ringing, Answered, Digit, ..., Failed or Ended
            ...

The sippy defects we work around are patched in `patches`, by `SipStack.start()`: importing
this package changes nothing in sippy.
"""

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
)
from callnow.telephony.sip.headers import CallerId, Credentials, InvalidSipInput
from callnow.telephony.sip.leg import Leg, LegRecord, LegState
from callnow.telephony.sip.stack import SipStack, SipStackError
from callnow.telephony.sip.uac import ReinviteRejected

__all__ = [
    "Answered",
    "CallerId",
    "Credentials",
    "Digit",
    "Ended",
    "EndedBy",
    "Failed",
    "FailureCause",
    "HangupPrepared",
    "InvalidSipInput",
    "Leg",
    "LegEvent",
    "LegRecord",
    "LegState",
    "ReinviteRejected",
    "RemoteSdpChanged",
    "Ringing",
    "SipStack",
    "SipStackError",
]
