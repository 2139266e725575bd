"""Which trunks may dial a visitor's number, and in what order (`[trunk]`, then `[[trunks]]`).

Failover itself is the channel's: it tries the next route when a trunk answers 5xx or not at
all (`FailureCause.UNAVAILABLE`), never on busy, decline or no answer, which are the
visitor's own answer. Order is the settings' order: a least-cost order from the rate deck is
not built (the deck rates destinations, not trunks).
"""

from __future__ import annotations

from dataclasses import dataclass

from callnow.config import TrunkSettings
from callnow.telephony.sip import Credentials


@dataclass(frozen=True)
class TrunkRoute:
    """One trunk as a visitor's leg is dialled through it (see TrunkSettings)."""

    uri_template: str
    credentials: Credentials | None = None
    name: str = "main"
    prefixes: tuple[str, ...] = ()
    from_domain: str | None = None
    outbound_proxy: tuple[str, int] | None = None
    from_user: str = ""
    display_name: str = ""
    caller_id_format: str = "e164"
    asserted_identity: bool = True
    privacy: str = "none"
    supported: str = ""
    # No response at all this long: the trunk is down (None: sippy's 32 s).
    setup_timeout_s: float | None = None

    @classmethod
    def from_settings(cls, trunk: TrunkSettings, from_domain: str | None = None) -> TrunkRoute:
        return cls(
            uri_template=trunk.uri_template,
            credentials=Credentials(trunk.username, trunk.password) if trunk.username else None,
            name=trunk.name,
            prefixes=tuple(trunk.prefixes),
            from_domain=from_domain or trunk.from_domain or None,
            outbound_proxy=trunk.outbound_proxy_address,
            from_user=trunk.from_user,
            display_name=trunk.display_name,
            caller_id_format=trunk.caller_id_format,
            asserted_identity=trunk.p_asserted_identity,
            privacy=trunk.privacy,
            supported=", ".join(trunk.supported),
            setup_timeout_s=trunk.setup_timeout_s,
        )

    def allows(self, e164: str) -> bool:
        return not self.prefixes or any(e164[1:].startswith(p) for p in self.prefixes)


def routes_for(routes: tuple[TrunkRoute, ...], e164: str) -> list[TrunkRoute]:
    """The trunks that may dial `e164`, in the order they are tried."""
    return [route for route in routes if route.allows(e164)]
