"""Which trunks may dial a visitor's number, and in what order (`[trunk]`, then `[[trunks]]`).

Failover itself is the channel's: it tries the next route when a trunk answers 5xx or not at
all (`FailureCause.UNAVAILABLE`), never on busy, decline or no answer, which are the
visitor's own answer. The order is least-cost where trunks have a carrier rate deck
(`rate_deck`, rules in `callnow.domain.trunk_order`), otherwise the settings' order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callnow.billing.deck_csv import DeckImportFailed, parse_deck_csv_bytes
from callnow.config import TrunkSettings
from callnow.domain.rating import RateDeck
from callnow.domain.trunk_order import least_cost_order
from callnow.telephony.rtpengine import DEFAULT_TRUNK_CODECS
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
    # Offered to this trunk, most preferred first (telephone-event is always added).
    codecs: tuple[str, ...] = DEFAULT_TRUNK_CODECS
    # The carrier's prices (`rate_deck`), for the least-cost order; None: unpriced.
    deck: RateDeck | None = None

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
            codecs=tuple(trunk.codecs),
            deck=load_carrier_deck(trunk),
        )

    def allows(self, e164: str) -> bool:
        return not self.prefixes or any(e164[1:].startswith(p) for p in self.prefixes)


def routes_for(routes: tuple[TrunkRoute, ...], e164: str) -> list[TrunkRoute]:
    """The trunks that may dial `e164`, in the order they are tried (least cost first)."""
    allowed = [route for route in routes if route.allows(e164)]
    return least_cost_order(allowed, e164, lambda route: route.deck)


def load_carrier_deck(trunk: TrunkSettings) -> RateDeck | None:
    """The trunk's `rate_deck` CSV read whole, or None when it has none. Raises ValueError
    naming the file and its first errors when it cannot be read or is not a valid deck."""
    if not trunk.rate_deck:
        return None
    path = Path(trunk.rate_deck)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"trunk {trunk.name}: cannot read rate_deck {path}: {exc}") from exc
    deck = parse_deck_csv_bytes(data, deck_id=f"trunk:{trunk.name}", effective_from=_ALWAYS)
    if isinstance(deck, DeckImportFailed):
        first = "; ".join(str(error) for error in deck.errors[:3])
        raise ValueError(f"trunk {trunk.name}: rate_deck {path} is not a valid deck: {first}")
    return deck


# Carrier decks have no effective date of their own: the file in use is the one in force.
_ALWAYS = datetime(2000, 1, 1, tzinfo=UTC)
