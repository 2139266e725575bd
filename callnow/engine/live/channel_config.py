"""`ChannelConfig`: what every callback channel of one `LiveTelephony` shares, built once from
the settings (URI templates, ring backstops, prompt voice, the trunks and their identities)."""

from __future__ import annotations

from dataclasses import dataclass

from callnow.domain.rating import RateDeck
from callnow.engine.live.trunks import TrunkRoute
from callnow.telephony.rtpengine import DEFAULT_TRUNK_CODECS
from callnow.telephony.sip import Credentials
from callnow.telephony.tones import Cadence

# The requests our dialogs handle (sippy answers OPTIONS; INFO carries keys; UPDATE is
# answered like a re-INVITE: see callnow/telephony/sip/patches.py, `update_requests`).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"


@dataclass(frozen=True)
class ChannelConfig:
    """What every channel of one `LiveTelephony` shares (built from the settings)."""

    owner_uri_template: str
    trunk_uri_template: str
    trunk_credentials: Credentials | None
    # Ring timeouts of the SIP legs themselves. The flow's own ring timers normally end an
    # unanswered leg first; these only guard against a leg outliving a stuck engine.
    owner_ring_timeout_s: float
    visitor_ring_timeout_s: float
    region: str = "AU"
    # An espeak-ng variant ("f3") for every prompt; the voice itself follows the owner's
    # language (`espeak_voice_for`).
    prompt_voice: str | None = None
    # Where both legs' INVITEs are sent (an edge proxy such as Kamailio); None: the URI's host.
    outbound_proxy: tuple[str, int] | None = None
    # Host part of the trunk leg's From and P-Asserted-Identity (trunks often want their own
    # domain there); None: our SIP address.
    trunk_from_domain: str | None = None
    # Where the trunk leg's INVITEs go when not `outbound_proxy` (the `[trunk]` setting).
    trunk_outbound_proxy: tuple[str, int] | None = None
    # The trunk leg's identity, as `[trunk]` describes it (see TrunkSettings).
    trunk_from_user: str = ""
    trunk_display_name: str = ""
    caller_id_format: str = "e164"
    trunk_asserted_identity: bool = True
    trunk_privacy: str = "none"
    # The ringback played to the owner while the visitor's phone rings; None: silence.
    ringback: Cadence | None = None
    ringback_s: float = 60.0
    # Headers of both legs' INVITEs: what we accept in the dialog and which extensions.
    invite_headers: tuple[tuple[str, str], ...] = (("Allow", ALLOW), ("Supported", ""))
    # The trunks after the one above (`[[trunks]]`), tried in order on failover.
    more_trunks: tuple[TrunkRoute, ...] = ()
    setup_timeout_s: float | None = None
    # An owner's call the PBX diverted (voicemail) counts as not answered (`sip` setting).
    owner_divert_unanswered: bool = True

    @property
    def trunk_routes(self) -> tuple[TrunkRoute, ...]:
        """Every trunk in the order tried: the one the fields above describe, then the rest."""
        headers = dict(self.invite_headers)
        first = TrunkRoute(
            uri_template=self.trunk_uri_template,
            credentials=self.trunk_credentials,
            from_domain=self.trunk_from_domain,
            outbound_proxy=self.trunk_outbound_proxy,
            from_user=self.trunk_from_user,
            display_name=self.trunk_display_name,
            caller_id_format=self.caller_id_format,
            asserted_identity=self.trunk_asserted_identity,
            privacy=self.trunk_privacy,
            supported=headers.get("Supported", ""),
            setup_timeout_s=self.setup_timeout_s,
            prefixes=self.trunk_prefixes,
            name=self.trunk_name,
            codecs=self.trunk_codecs,
            deck=self.trunk_deck,
        )
        return (first, *self.more_trunks)

    @property
    def wideband_owner(self) -> bool:
        """Offer the owner's phone G.722 first: some trunk may carry it end to end."""
        return any("G722" in route.codecs for route in self.trunk_routes)

    trunk_prefixes: tuple[str, ...] = ()
    trunk_name: str = "main"
    trunk_codecs: tuple[str, ...] = DEFAULT_TRUNK_CODECS
    trunk_deck: RateDeck | None = None
