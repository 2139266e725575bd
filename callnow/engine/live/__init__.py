"""The real telephony for the callback engine: sippy SIP legs and rtpengine media.

See `telephony.LiveTelephony` for the lifecycle and `channel.LiveChannel` for one callback.
"""

from callnow.engine.live.channel import LiveChannel
from callnow.engine.live.channel_config import ChannelConfig
from callnow.engine.live.telephony import LiveTelephony, flow_limits
from callnow.engine.live.uris import UnsafeNumber, owner_uri, trunk_uri

__all__ = [
    "ChannelConfig",
    "LiveChannel",
    "LiveTelephony",
    "UnsafeNumber",
    "flow_limits",
    "owner_uri",
    "trunk_uri",
]
