"""`LiveChannel`: one callback's two SIP legs (sippy) and its media session (rtpengine).

It turns the engine's commands into SIP and ng requests, and the legs' and rtpengine's reports
into flow events (through `callnow.engine.translate`), keeping the `CallChannel` contract:

- every action returns once it is under way; progress comes back through the event sink;
- a leg's events are handled strictly in order, one at a time, by one task per leg, so the
  media step that must precede an event (the owner's SDP goes to rtpengine before the flow
  hears `LegAnswered` and asks for a prompt) can never be overtaken by a later event
  (a BYE right after the 200 OK);
- rtpengine 10.5 never reports the end of a prompt, so `PromptFinished` is timed here from
  the prompt's duration, and a generation counter makes sure a stopped or replaced prompt
  is never reported as finished. The same timer tells `stop_prompt` that nothing is playing
  any more, so a prompt that already ended costs no `stop media` request (rtpengine would
  only answer "not currently playing").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from callnow.domain.calls import LegHangupPrepared, LegRole, PreparedHangup
from callnow.domain.flow import PromptFinished, PromptKind
from callnow.engine.live.trunks import TrunkRoute, routes_for
from callnow.engine.live.uris import caller_id_as, check_e164, owner_uri, trunk_uri
from callnow.engine.ports import EventSink
from callnow.engine.translate import from_rtpengine_dtmf, from_sip
from callnow.telephony.dtmf_log import DtmfEvent
from callnow.telephony.prompts import (
    DEFAULT_CODEC,
    PromptRenderer,
    espeak_voice_for,
    prompt_codec_for,
)
from callnow.telephony.rtpengine import AnchoredCallback
from callnow.telephony.sdp import answer_direction, continue_origin, direction, with_direction
from callnow.telephony.sip import (
    Answered,
    CallerId,
    Credentials,
    Ended,
    Failed,
    FailureCause,
    HangupPrepared,
    Leg,
    LegEvent,
    ReinviteRejected,
    RemoteSdpChanged,
    Ringing,
    SipStack,
)
from callnow.telephony.tones import Cadence, render_ringback

log = logging.getLogger(__name__)

# The requests our dialogs handle (sippy answers OPTIONS; INFO carries keys).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"

# How long close() lets the leg tasks drain their last events before cancelling them.
_DRAIN_S = 1.0


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
        )
        return (first, *self.more_trunks)

    trunk_prefixes: tuple[str, ...] = ()
    trunk_name: str = "main"


class LiveChannel:
    """The `CallChannel` of one callback. Created by `LiveTelephony.open_call`."""

    def __init__(
        self,
        *,
        request_ref: str,
        events: EventSink,
        stack: SipStack,
        media: AnchoredCallback,
        renderer: PromptRenderer,
        config: ChannelConfig,
        visitor: CallerId,
        on_closed: Callable[[LiveChannel], None] | None = None,
    ) -> None:
        self.request_ref = request_ref
        self.media = media
        self._events = events
        self._stack = stack
        self._renderer = renderer
        self._config = config
        self._visitor = visitor
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self.legs: dict[LegRole, Leg] = {}
        self._leg_tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._visitor_sdp: str | None = None
        # Prompts are rendered in the G.711 law the owner's phone answered with.
        self._prompt_codec = DEFAULT_CODEC
        self._media_opened = False
        self._owner_offer: asyncio.Task[str] | None = None
        # A prompt may still be playing: started (or starting) and its timer has not fired.
        self._prompt_playing = False
        self._prompt_generation = 0
        self._prompt_timer: asyncio.TimerHandle | None = None
        self._closed = False
        # Both legs anchored in one rtpengine session (re-INVITEs are passed between them).
        self._bridged = False
        # The visitor's phone rings without early media: the owner should hear our ringback.
        self._ringback_wanted = False
        self._ringback_playing = False
        # Failover: the trunks still to try, the number and the caller ID they are given,
        # and whether the flow hung the visitor up (then no other trunk is tried).
        self._trunks_left: list[TrunkRoute] = []
        self._visitor_number = ""
        self._caller_id = ""
        self._visitor_hung_up = False

    # -- dialling ----------------------------------------------------------------------------

    def prepare_owner_media(self) -> None:
        """Ask rtpengine for the owner leg's media now, so the engine's write-ahead row of that
        leg (a database transaction) and this ng round trip run at the same time. It places no
        call: only `dial_owner` sends the INVITE, after that row is written. Every callback
        dials its owner first; `close()` frees the media if it never does."""
        if self._owner_offer is None:
            self._media_opened = True
            self._owner_offer = self._loop.create_task(self.media.offer_for_owner())

    async def dial_owner(self, number: str) -> None:
        uri = owner_uri(self._config.owner_uri_template, number)
        self.prepare_owner_media()
        assert self._owner_offer is not None
        sdp = await self._owner_offer
        leg = await self._stack.dial(
            uri,
            caller=self._visitor,  # the owner's phone shows who is asking
            sdp=sdp,
            ring_timeout=self._config.owner_ring_timeout_s,
            next_hop=self._config.outbound_proxy,
            extra_headers=dict(self._config.invite_headers),
            defer_updates=True,
        )
        self._adopt(LegRole.OWNER, leg)

    async def dial_visitor(self, number: str, caller_id: str) -> None:
        check_e164(caller_id, "caller ID")
        routes = routes_for(self._config.trunk_routes, check_e164(number, "visitor number"))
        if not routes:
            raise ValueError(f"no trunk may dial {number[:4]}…: check the trunks' prefixes")
        self._trunks_left = routes[1:]
        self._visitor_number, self._caller_id = number, caller_id
        # Until the visitor answers nothing the owner says may reach the carrier.
        await self.media.hold_owner_audio()
        await self._dial_trunk(routes[0])

    async def _dial_trunk(self, route: TrunkRoute) -> None:
        config, number = self._config, self._visitor_number
        uri = trunk_uri(route.uri_template, number, config.region)
        shown = caller_id_as(self._caller_id, route.caller_id_format, config.region)
        presented = CallerId(route.display_name, shown)
        caller = CallerId(route.display_name, route.from_user) if route.from_user else presented
        headers = dict(config.invite_headers)
        headers["Supported"] = route.supported
        if route.privacy != "none":
            headers["Privacy"] = route.privacy
        leg = await self._stack.dial(
            uri,
            caller=caller,
            asserted_identity=presented if route.asserted_identity else None,
            credentials=route.credentials,
            sdp=self.media.sdp_for_visitor,
            ring_timeout=config.visitor_ring_timeout_s,
            next_hop=config.outbound_proxy or route.outbound_proxy,
            from_domain=route.from_domain,
            extra_headers=headers,
            defer_updates=True,
            setup_timeout=route.setup_timeout_s,
        )
        self._adopt(LegRole.VISITOR, leg)
        if self._visitor_hung_up or self._closed:  # hung up while this INVITE was being sent
            await leg.hangup("callback_closed")

    async def _fail_over(self, event: LegEvent) -> bool:
        """Dial the next trunk after `event` if it says the trunk (not the visitor) failed.
        True when the next trunk is dialled: the flow never hears of the failed one."""
        if not (isinstance(event, Failed) and event.cause is FailureCause.UNAVAILABLE):
            return False
        if not self._trunks_left or self._visitor_hung_up or self._closed:
            return False
        route, self._trunks_left = self._trunks_left[0], self._trunks_left[1:]
        log.warning(
            "callback %s: trunk failed (%d %s); trying trunk %s",
            self.request_ref,
            event.code,
            event.reason,
            route.name,
        )
        try:
            await self._dial_trunk(route)
        except Exception:
            log.exception("callback %s: dialling trunk %s failed", self.request_ref, route.name)
            return False
        return True

    def _adopt(self, role: LegRole, leg: Leg) -> None:
        self.legs[role] = leg
        # How to end this leg if the engine dies; the INVITE's CANCEL is known already.
        leg.on_hangup_prepared = lambda prepared: self._hangup_prepared(role, leg, prepared)
        if leg.prepared_hangup is not None:
            self._hangup_prepared(role, leg, leg.prepared_hangup)
        task = self._loop.create_task(self._follow(role, leg), name=f"{self.request_ref}:{role}")
        self._leg_tasks.append(task)

    def _hangup_prepared(self, role: LegRole, leg: Leg, prepared: HangupPrepared) -> None:
        if self._closed:
            return
        hangup = PreparedHangup(
            method=prepared.method,
            message=prepared.message,
            target_host=prepared.target[0],
            target_port=prepared.target[1],
            sip_call_id=leg.call_id,
            media_call_id=self.media.call_id,
        )
        self._events(LegHangupPrepared(role, hangup))

    async def _follow(self, role: LegRole, leg: Leg) -> None:
        """Hand the leg's events to the flow, in order, doing the media step each needs."""
        async for event in leg:
            try:
                forward = await self._media_step(role, leg, event)
            except Exception:
                # Without media the call is useless: end the leg. Its terminal event follows
                # through this loop and tells the flow.
                log.exception("callback %s: media for the %s leg failed", self.request_ref, role)
                await leg.hangup("media_failed")
                continue
            if forward and role is LegRole.VISITOR and await self._fail_over(event):
                forward = False
            if forward:
                flow_event = from_sip(role, event)
                if flow_event is not None:
                    self._events(flow_event)

    async def _media_step(self, role: LegRole, leg: Leg, event: LegEvent) -> bool:
        """Do what rtpengine must hear of `event` first; False to keep it from the flow."""
        if role is LegRole.VISITOR:
            await self._ringback_follows(event)
        if isinstance(event, Answered):
            if not event.sdp:
                raise ValueError(f"the {role} answered without SDP")
            if role is LegRole.OWNER:
                self._prompt_codec = prompt_codec_for(event.sdp)
                await self.media.owner_answered(event.sdp)
            else:
                self._visitor_sdp = event.sdp  # used by bridge(), which follows the answer
        elif isinstance(event, RemoteSdpChanged):
            await self._answer_reoffer(role, leg, event.sdp)
        return True

    async def _answer_reoffer(self, role: LegRole, leg: Leg, offer: str | None) -> None:
        """A re-INVITE (hold, resume, a new address) from one leg. Once bridged, the offer goes
        through rtpengine and on to the other leg by a re-INVITE of ours, so the other phone
        hears the hold too and media follows both ways; the other leg's answer comes back
        through rtpengine as ours (RFC 3264: `sendonly` is answered `recvonly`, `inactive`
        `inactive`). Before the bridge only this leg and rtpengine's side of it exist: it is
        answered from our last SDP with the direction RFC 3264 asks for. The re-INVITE is
        always answered, whatever fails on the way."""
        other = self.legs.get(LegRole.VISITOR if role is LegRole.OWNER else LegRole.OWNER)
        answer: str | None = None
        try:
            if self._bridged and other is not None and not other.done and offer:
                answer = await self._pass_reoffer(role, other, offer)
        except Exception:
            log.exception("callback %s: passing on the %s re-INVITE failed", self.request_ref, role)
        if answer is None:
            answer = leg.local_answer(offer)
        else:
            answer = continue_origin(answer, leg.local_sdp)
        await leg.answer_update(answer)

    async def _pass_reoffer(self, role: LegRole, other: Leg, offer: str) -> str:
        tag = self.media.owner_tag if role is LegRole.OWNER else self.media.visitor_tag
        for_other = continue_origin(await self.media.reoffer_from(tag, offer), other.local_sdp)
        try:
            other_answer = await other.reinvite(for_other)
        except (ReinviteRejected, TimeoutError, RuntimeError) as exc:
            # The other phone keeps its last state; rtpengine still needs an answer from it.
            log.warning("callback %s: re-INVITE passed on was refused: %s", self.request_ref, exc)
            other_answer = None
        if not other_answer:
            last = other.remote_sdp or ""
            wanted = answer_direction(direction(for_other))
            other_answer = with_direction(last, wanted)
        return await self.media.reanswer_to(tag, other_answer)

    # -- ringback ----------------------------------------------------------------------------

    async def _ringback_follows(self, event: LegEvent) -> None:
        if isinstance(event, Ringing):
            # Early media is the carrier's own tone, relayed to the owner by rtpengine.
            wanted = event.early_sdp is None and self._config.ringback is not None
            if wanted and not self._ringback_wanted:
                self._ringback_wanted = True
                self._spawn(self._start_ringback())
            elif not wanted:
                await self._stop_ringback()
        elif isinstance(event, Answered | Failed | Ended):
            await self._stop_ringback()

    async def _start_ringback(self) -> None:
        cadence = self._config.ringback
        if cadence is None or self._prompt_playing or self._ringback_playing or self._closed:
            return
        try:
            tone = await render_ringback(
                self._renderer, cadence, self._config.ringback_s, self._prompt_codec
            )
            if not self._ringback_wanted or self._prompt_playing or self._closed:
                return
            self._ringback_playing = True
            await self.media.play_to_owner(tone.path)
            if not self._ringback_wanted:  # answered while play media was on its way
                await self._stop_ringback(force=True)
        except Exception:
            # Only a comfort: the call goes on in silence.
            log.warning("callback %s: no ringback", self.request_ref, exc_info=True)

    async def _stop_ringback(self, *, force: bool = False) -> None:
        self._ringback_wanted = False
        if self._ringback_playing or force:
            self._ringback_playing = False
            await self.media.stop_prompt()

    # -- prompts -----------------------------------------------------------------------------

    async def play_prompt(self, kind: PromptKind, text: str, *, language: str = "en") -> None:
        rendered = await self._renderer.render(
            text,
            language=espeak_voice_for(language),
            voice=self._config.prompt_voice,
            codec=self._prompt_codec,
        )
        self._cancel_prompt_timer()
        self._prompt_generation += 1
        generation = self._prompt_generation
        self._prompt_playing = True
        self._ringback_playing = False  # rtpengine replaces it with the prompt
        duration = await self.media.play_to_owner(rendered.path)
        if duration is None or duration <= 0:
            duration = rendered.duration_s
        if generation == self._prompt_generation:  # not stopped while play_media was in flight
            self._prompt_timer = self._loop.call_later(duration, self._prompt_ended, generation)

    def _prompt_ended(self, generation: int) -> None:
        self._prompt_timer = None
        if generation == self._prompt_generation:
            self._prompt_playing = False
            if not self._closed:
                self._events(PromptFinished())
                if self._ringback_wanted:  # a whisper ended while the visitor's phone rings
                    self._spawn(self._start_ringback())

    async def stop_prompt(self) -> None:
        # Invalidate first: whatever happens to the ng request, this prompt is never reported.
        self._prompt_generation += 1
        self._cancel_prompt_timer()
        if self._prompt_playing:
            self._prompt_playing = False
            await self.media.stop_prompt()

    def _cancel_prompt_timer(self) -> None:
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None

    # -- digits from rtpengine's DTMF log ----------------------------------------------------

    def on_dtmf(self, event: DtmfEvent) -> None:
        """Called by the telephony's DTMF log listener for this channel's rtpengine call."""
        digit = from_rtpengine_dtmf(event, self.media.owner_tag)
        if digit is not None and not self._closed:
            self._events(digit)

    # -- bridge and hang-up --------------------------------------------------------------------

    async def bridge(self) -> None:
        if self._visitor_sdp is None:
            raise RuntimeError("bridge before the visitor answered with SDP")
        reoffer = await self.media.visitor_answered(self._visitor_sdp)
        await self.media.release_owner_audio()
        self._bridged = True
        owner = self.legs.get(LegRole.OWNER)
        if reoffer is not None and owner is not None:
            # Only when rtpengine moved the owner's port (not expected with port latching);
            # it waits for the phone's answer, so it must not hold the engine up.
            self._spawn(self._reinvite(owner, reoffer))

    async def _reinvite(self, leg: Leg, sdp: str) -> None:
        try:
            await leg.reinvite(sdp)
        except Exception:
            log.exception("callback %s: re-INVITE of the owner failed", self.request_ref)

    async def hangup(self, role: LegRole, reason: str) -> None:
        if role is LegRole.VISITOR:
            self._visitor_hung_up = True
        leg = self.legs.get(role)
        if leg is not None:
            await leg.hangup(reason)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._prompt_generation += 1
        self._cancel_prompt_timer()
        try:
            for role, leg in self.legs.items():
                try:
                    await leg.hangup("callback_closed")
                except Exception:
                    log.exception("callback %s: hanging up the %s", self.request_ref, role)
            if self._leg_tasks:
                _, pending = await asyncio.wait(self._leg_tasks, timeout=_DRAIN_S)
                for task in pending:
                    task.cancel()
            for task in list(self._background):
                task.cancel()
            if self._owner_offer is not None:
                # Deleting before the offer lands would leave rtpengine a call nobody ends.
                await asyncio.wait([self._owner_offer], timeout=_DRAIN_S)
                if self._owner_offer.done() and not self._owner_offer.cancelled():
                    self._owner_offer.exception()  # seen (dial_owner reported any failure)
            if self._media_opened:
                await self.media.delete()
        finally:
            if self._on_closed is not None:
                self._on_closed(self)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
