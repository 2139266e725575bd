"""`LiveChannel`: one callback's two SIP legs (sippy) and its media session (rtpengine).

It turns the engine's commands into SIP and ng requests, and the legs' and rtpengine's reports
into flow events (through `callnow.engine.translate`), keeping the `CallChannel` contract:

- every action returns once it is under way; progress comes back through the event sink;
- a leg's events are handled strictly in order, one at a time, by one task per leg, so the
  media step that must precede an event (the owner's SDP goes to rtpengine before the flow
  hears `LegAnswered` and asks for a prompt) can never be overtaken by a later event
  (a BYE right after the 200 OK).

Here: dialling both legs (the visitor through the trunks in order, failing over), each leg's
media step, the bridge, hang-ups and closing. What the owner hears (prompts, ringback) is
`owner_audio.OwnerAudio`'s; re-INVITEs are answered by `reoffers`; the shared settings are
`channel_config.ChannelConfig`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from callnow.domain.calls import LegHangupPrepared, LegRole, PreparedHangup
from callnow.domain.flow import PromptKind
from callnow.engine.live.channel_config import ALLOW, ChannelConfig
from callnow.engine.live.owner_audio import OwnerAudio
from callnow.engine.live.reoffers import answer_reoffer
from callnow.engine.live.trunks import TrunkRoute, routes_for
from callnow.engine.live.uris import caller_id_as, check_e164, owner_uri, trunk_uri
from callnow.engine.ports import EventSink
from callnow.engine.translate import from_rtpengine_dtmf, from_sip, owner_divert
from callnow.telephony.dtmf_log import DtmfEvent
from callnow.telephony.prompts import PromptRenderer, prompt_codec_for
from callnow.telephony.rtpengine import AnchoredCallback
from callnow.telephony.sip import (
    Answered,
    CallerId,
    Failed,
    FailureCause,
    HangupPrepared,
    Leg,
    LegEvent,
    RemoteSdpChanged,
    Ringing,
    SipStack,
)

__all__ = ["ALLOW", "ChannelConfig", "LiveChannel"]

log = logging.getLogger(__name__)

# How long close() lets the leg tasks drain their last events before cancelling them.
_DRAIN_S = 1.0


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
        self._media_opened = False
        self._owner_offer: asyncio.Task[str] | None = None
        self._closed = False
        # The owner's PBX diverted the call (voicemail): the flow is done with that leg.
        self._owner_diverted = False
        # Both legs anchored in one rtpengine session (re-INVITEs are passed between them).
        self._bridged = False
        # Prompts and ringback: what the owner hears from us.
        self._audio = OwnerAudio(
            request_ref=request_ref,
            media=media,
            renderer=renderer,
            config=config,
            events=events,
            spawn=self._spawn,
        )
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
        if route.codecs != self.media.trunk_codecs:  # this trunk has a list of its own
            await self.media.offer_to_trunk(route.codecs)
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
            if role is LegRole.OWNER and self._diverted(event):
                continue
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

    def _diverted(self, event: LegEvent) -> bool:
        """True when the owner leg's `event` shows a divert (or follows one), with the setting
        on: the flow hears `OwnerDiverted` instead, and hangs the leg up before any prompt.
        Nothing after it reaches rtpengine or the flow."""
        if self._owner_diverted:
            return True
        if not self._config.owner_divert_unanswered:
            return False
        found = owner_divert(event)
        if found is None:
            return False
        diverted, sign = found
        self._owner_diverted = True
        log.info("callback %s: the owner's call was diverted (%s)", self.request_ref, sign)
        ringing = from_sip(LegRole.OWNER, event) if isinstance(event, Ringing) else None
        if ringing is not None:
            self._events(ringing)
        self._events(diverted)
        return True

    async def _media_step(self, role: LegRole, leg: Leg, event: LegEvent) -> bool:
        """Do what rtpengine must hear of `event` first; False to keep it from the flow."""
        if role is LegRole.VISITOR:
            await self._audio.follow_visitor(event)
        if isinstance(event, Answered):
            if not event.sdp:
                raise ValueError(f"the {role} answered without SDP")
            if role is LegRole.OWNER:
                self._audio.codec = prompt_codec_for(event.sdp)
                await self.media.owner_answered(event.sdp)
            else:
                self._visitor_sdp = event.sdp  # used by bridge(), which follows the answer
        elif isinstance(event, RemoteSdpChanged):
            other = self.legs.get(LegRole.VISITOR if role is LegRole.OWNER else LegRole.OWNER)
            await answer_reoffer(
                request_ref=self.request_ref,
                media=self.media,
                role=role,
                leg=leg,
                other=other,
                bridged=self._bridged,
                offer=event.sdp,
            )
        return True

    # -- prompts -----------------------------------------------------------------------------

    async def play_prompt(self, kind: PromptKind, text: str, *, language: str = "en") -> None:
        await self._audio.play_prompt(kind, text, language=language)

    async def stop_prompt(self) -> None:
        await self._audio.stop_prompt()

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
        self._audio.close()
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
