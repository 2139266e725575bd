"""`LiveTelephony`: the real `Telephony` — sippy for SIP, rtpengine for media, espeak-ng prompts.

    telephony = await LiveTelephony.start(settings)     # SIP stack, DTMF log, rtpengine
    engine = CallbackEngine(telephony, recorder, limits=flow_limits(settings.sip))
    handle = await engine.start_callback(facts)
    ...
    await engine.shutdown()
    await telephony.stop()

One per process (sippy's stack is process-wide). In `spawn` mode it runs a private rtpengine
and stops it again; in `external` mode it talks to the one at `ng_host:ng_port`, which must
send its DTMF log to `ng_host:dtmf_log_port` (where we listen).
"""

from __future__ import annotations

import gc
import json
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from callnow.config import RtpengineSettings, Settings, SipSettings
from callnow.domain.calls import PreparedHangup
from callnow.domain.flow import FlowLimits, RequestFacts
from callnow.engine.child import REGISTRATIONS_FILE
from callnow.engine.live.channel import LiveChannel
from callnow.engine.live.channel_config import ALLOW, ChannelConfig
from callnow.engine.live.trunks import TrunkRoute, load_carrier_deck
from callnow.engine.live.uris import check_e164
from callnow.engine.ports import EventSink
from callnow.telephony.dtmf_log import DtmfEvent, DtmfLogListener
from callnow.telephony.prompts import PromptRenderer
from callnow.telephony.rtpengine import AnchoredCallback, RtpengineClient
from callnow.telephony.rtpengine_process import RtpengineProcess
from callnow.telephony.sip import CallerId, Credentials, SipStack
from callnow.telephony.sip.prepared import send_prepared
from callnow.telephony.sip.register import RegistrationSpec, RegistrationState
from callnow.telephony.tones import cadence_for

log = logging.getLogger(__name__)

# The SIP legs' own ring timeouts are this much longer than the flow's, so the flow's timer
# (which records "no answer" and tells the owner) normally ends an unanswered leg first.
RING_BACKSTOP_MARGIN_S = 5.0

# Young-generation threshold of the cyclic garbage collector in a process running calls.
GC_YOUNG_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """Collect the young generation every 20,000 net allocations instead of CPython's 700.

    An engine holds hundreds of calls' worth of sippy and asyncio objects, each alive for
    seconds. With the default thresholds collections ran often, and the full ones stopped every
    thread for long enough that SIP retransmitted INVITEs (after 500 ms without an answer) and
    phones aborted calls; see docs/decisions/0006-gil-gc-tuning.md for the figures. Only ever
    raises the threshold, process-wide (one engine per process, as sippy's stack is); the
    older generations keep their settings.
    """
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def flow_limits(sip: SipSettings, **overrides: Any) -> FlowLimits:
    """The flow's timeouts from the `[sip]` settings (ring timeouts, maximum call duration,
    how long a silent owner is asked)."""
    limits = FlowLimits(
        owner_ring_s=sip.owner_ring_timeout_s,
        visitor_ring_s=sip.visitor_ring_timeout_s,
        max_call_duration_s=sip.max_call_duration_s,
        max_prompt_plays=sip.owner_prompt_plays,
        digit_wait_s=sip.owner_digit_wait_s,
    )
    return replace(limits, **overrides) if overrides else limits


def registrations(settings: Settings) -> list[RegistrationSpec]:
    """What to REGISTER: one account per trunk with `registration` on."""
    specs = []
    for trunk in settings.all_trunks:
        registrar = trunk.registrar_address
        if not trunk.registration or registrar is None:
            continue
        specs.append(
            RegistrationSpec(
                name=trunk.name,
                registrar=registrar,
                user=trunk.register_user or trunk.username,
                domain=trunk.register_domain or registrar[0],
                credentials=Credentials(trunk.username, trunk.password) if trunk.username else None,
                expires_s=trunk.register_expires_s,
                retry_max_s=float(trunk.register_retry_max_s),
            )
        )
    return specs


class LiveTelephony:
    """Create with `await LiveTelephony.start(settings)`; end with `await stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        prompt_cache_dir: Path | None = None,
        owner_ring_timeout_s: float | None = None,
        visitor_ring_timeout_s: float | None = None,
        prompt_voice: str | None = None,
        outbound_proxy: tuple[str, int] | None = None,
        trunk_from_domain: str | None = None,
        dtmf_listen_host: str | None = None,
    ) -> None:
        sip, trunk = settings.sip, settings.trunk
        self.settings = settings
        credentials = Credentials(trunk.username, trunk.password) if trunk.username else None
        self.config = ChannelConfig(
            owner_uri_template=sip.owner_uri_template,
            trunk_uri_template=trunk.uri_template,
            trunk_credentials=credentials,
            owner_ring_timeout_s=owner_ring_timeout_s
            or sip.owner_ring_timeout_s + RING_BACKSTOP_MARGIN_S,
            visitor_ring_timeout_s=visitor_ring_timeout_s
            or sip.visitor_ring_timeout_s + RING_BACKSTOP_MARGIN_S,
            region=settings.default_region,
            prompt_voice=prompt_voice,
            outbound_proxy=outbound_proxy,
            trunk_from_domain=trunk_from_domain or trunk.from_domain or None,
            trunk_outbound_proxy=trunk.outbound_proxy_address,
            trunk_from_user=trunk.from_user,
            trunk_display_name=trunk.display_name,
            caller_id_format=trunk.caller_id_format,
            trunk_asserted_identity=trunk.p_asserted_identity,
            trunk_privacy=trunk.privacy,
            invite_headers=(("Allow", ALLOW), ("Supported", ", ".join(trunk.supported))),
            ringback=cadence_for(settings.default_region) if sip.owner_ringback else None,
            # Longer than the visitor can ring, so it never ends on its own.
            ringback_s=min(300.0, sip.visitor_ring_timeout_s + RING_BACKSTOP_MARGIN_S),
            trunk_name=trunk.name,
            trunk_prefixes=tuple(trunk.prefixes),
            trunk_codecs=tuple(trunk.codecs),
            trunk_deck=load_carrier_deck(trunk),
            setup_timeout_s=trunk.setup_timeout_s,
            owner_divert_unanswered=sip.owner_divert_unanswered,
            more_trunks=tuple(TrunkRoute.from_settings(more) for more in settings.trunks),
        )
        # rtpengine sends its DTMF log to ng_host:dtmf_log_port unless told otherwise; an
        # rtpengine on another host needs our address here (and in its --dtmf-log-dest).
        self._dtmf_host = dtmf_listen_host or settings.rtpengine.ng_host
        self.renderer = PromptRenderer(prompt_cache_dir or settings.data_dir / "prompts")
        self.stack = SipStack.from_settings(sip)
        self.rtpengine = RtpengineClient.from_settings(settings.rtpengine)
        self.process: RtpengineProcess | None = None
        self._dtmf: DtmfLogListener | None = None
        self._channels: dict[str, LiveChannel] = {}
        self._wideband_owner = self.config.wideband_owner

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def start(cls, settings: Settings, **options: Any) -> LiveTelephony:
        """Start rtpengine (mode `spawn`), the DTMF log listener and the SIP stack.

        `options` are the constructor's keyword arguments. Raises (with everything already
        started stopped again) if any part cannot start: `RtpengineStartError`,
        `RtpengineUnavailable`, `OSError`, `SipStackError`.
        """
        telephony = cls(settings, **options)
        try:
            await telephony._start()
        except BaseException:
            await telephony.stop()
            raise
        return telephony

    async def _start(self) -> None:
        media: RtpengineSettings = self.settings.rtpengine
        if media.mode == "spawn":
            self.process = RtpengineProcess(media)
            await self.process.start()
        await self.rtpengine.connect()
        await self.rtpengine.ping()  # a clear error now rather than at the first call
        self._dtmf = DtmfLogListener(self._dtmf_host, media.dtmf_log_port, self._on_dtmf)
        await self._dtmf.start()
        await self.stack.start()
        specs = registrations(self.settings)
        self._publish_registrations()  # none yet: an earlier run's states must not show
        for spec in specs:
            await self.stack.register(spec, lambda _state: self._publish_registrations())
        tune_garbage_collector()

    async def stop(self) -> None:
        """Hang up and release every callback still open, then stop what `start` started.

        Idempotent. Callbacks should have been ended through the engine first
        (`engine.shutdown()`), so their call records are written.
        """
        for channel in list(self._channels.values()):
            try:
                await channel.close()
            except Exception:
                log.exception("closing callback %s at shutdown", channel.request_ref)
        if self.stack.running:
            await self.stack.stop()
        if self._dtmf is not None:
            self._dtmf.close()
            self._dtmf = None
        await self.rtpengine.close()
        if self.process is not None:
            await self.process.astop()
            self.process = None

    async def __aenter__(self) -> LiveTelephony:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def sip_address(self) -> tuple[str, int]:
        return self.stack.address

    @property
    def trunk_registrations(self) -> list[RegistrationState]:
        """The state of each trunk with `registration` on (safe to read from any thread)."""
        return self.stack.registrations if self.stack.running else []

    def _publish_registrations(self) -> None:
        """Write the registrations' states where a web in another process reads them
        (`REGISTRATIONS_FILE` in the data directory), atomically. Called on the SIP thread,
        rarely (a state change); a failed write only costs the web's view."""
        path = self.settings.data_dir / REGISTRATIONS_FILE
        states = [
            {"name": r.name, "registered": r.registered, "last_error": r.last_error}
            for r in (self.stack.registrations if self.stack.running else [])
        ]
        try:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(states))
            temporary.replace(path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    @property
    def open_channels(self) -> int:
        return len(self._channels)

    # -- callbacks -------------------------------------------------------------------------

    async def open_call(self, facts: RequestFacts, events: EventSink) -> LiveChannel:
        # The owner's phone shows the visitor's name and number: checked before anything opens.
        number = check_e164(facts.visitor_e164, "caller number")
        visitor = CallerId(facts.caller_name or "", number)
        request_ref = facts.request_ref
        if not self.stack.running:
            raise RuntimeError("live telephony is not started")
        # rtpengine copies the call-id unescaped into its DTMF log JSON: keep it plain.
        media_call_id = f"callnow-{uuid.uuid4().hex}"
        channel = LiveChannel(
            request_ref=request_ref,
            events=events,
            stack=self.stack,
            # Offered the first trunk's codecs; a trunk tried later with its own list is
            # offered again (`LiveChannel._dial_trunk`).
            media=AnchoredCallback(
                self.rtpengine,
                media_call_id,
                trunk_codecs=self.config.trunk_codecs,
                wideband=self._wideband_owner,
            ),
            renderer=self.renderer,
            config=self.config,
            visitor=visitor,
            on_closed=self._forget,
        )
        self._channels[media_call_id] = channel
        channel.prepare_owner_media()
        return channel

    async def end_abandoned(self, hangup: PreparedHangup) -> None:
        """End a leg an engine that died left up: send its prepared CANCEL or BYE, and delete
        its media session (found when it is this rtpengine; otherwise rtpengine's own timeout
        ends it). Raises OSError when the request cannot be sent."""
        await send_prepared(
            hangup.message,
            (hangup.target_host, hangup.target_port),
            local_host=self.settings.sip.listen_host,
        )
        if hangup.media_call_id:
            try:
                await self.rtpengine.delete(hangup.media_call_id)
            except Exception:
                log.warning("rtpengine could not delete %s", hangup.media_call_id, exc_info=True)

    def _forget(self, channel: LiveChannel) -> None:
        self._channels.pop(channel.media.call_id, None)

    def _on_dtmf(self, event: DtmfEvent) -> None:
        channel = self._channels.get(event.call_id)
        if channel is None:
            log.debug("DTMF for unknown rtpengine call %r dropped", event.call_id[:64])
            return
        channel.on_dtmf(event)
