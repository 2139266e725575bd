"""SIP adapter around sippy 2.5.0: one UDP stack per process, outbound call legs for asyncio.

    async with SipStack("127.0.0.1", 5070) as stack:
        leg = await stack.dial("sip:1001@pbx:5080", caller=CallerId("Mary", "+61290375678"),
                               sdp=offer, ring_timeout=30)
        async for event in leg:   # Ringing, Answered, Digit, ..., Failed or Ended
            ...

The sippy defects we work around are patched (at import, before sippy is used) in `patches`.
"""

from callnow.telephony.sip import patches

patches.apply()

from callnow.telephony.sip.events import (  # noqa: E402
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
from callnow.telephony.sip.headers import CallerId, Credentials, InvalidSipInput  # noqa: E402
from callnow.telephony.sip.leg import Leg, LegRecord, LegState  # noqa: E402
from callnow.telephony.sip.stack import SipStack, SipStackError  # noqa: E402
from callnow.telephony.sip.uac import ReinviteRejected  # noqa: E402

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
