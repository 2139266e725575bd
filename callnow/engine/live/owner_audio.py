"""`OwnerAudio`: what one callback plays to the owner — prompts and the ringback.

- rtpengine 10.5 never reports the end of a prompt, so `PromptFinished` is timed here from
  the prompt's duration, and a generation counter makes sure a stopped or replaced prompt
  is never reported as finished. The same timer tells `stop_prompt` that nothing is playing
  any more, so a prompt that already ended costs no `stop media` request (rtpengine would
  only answer "not currently playing").
- While the visitor's phone rings without early media the owner hears our ringback (the
  carrier's own early media is relayed by rtpengine instead); it stops on the answer or the
  end, and a prompt replaces it.
- Prompts and the ringback are rendered in the G.711 law the owner's phone answered with
  (`codec`, set by the channel on the owner's answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from callnow.domain.flow import PromptFinished, PromptKind
from callnow.engine.live.channel_config import ChannelConfig
from callnow.engine.ports import EventSink
from callnow.telephony.prompts import DEFAULT_CODEC, PromptRenderer, espeak_voice_for
from callnow.telephony.rtpengine import AnchoredCallback
from callnow.telephony.sip import Answered, Ended, Failed, LegEvent, Ringing
from callnow.telephony.tones import render_ringback

log = logging.getLogger(__name__)


class OwnerAudio:
    """The owner's side of one callback's media, as the channel asks for it."""

    def __init__(
        self,
        *,
        request_ref: str,
        media: AnchoredCallback,
        renderer: PromptRenderer,
        config: ChannelConfig,
        events: EventSink,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._request_ref = request_ref
        self._media = media
        self._renderer = renderer
        self._config = config
        self._events = events
        self._spawn = spawn
        self._loop = asyncio.get_running_loop()
        self.codec = DEFAULT_CODEC
        # A prompt may still be playing: started (or starting) and its timer has not fired.
        self._prompt_playing = False
        self._prompt_generation = 0
        self._prompt_timer: asyncio.TimerHandle | None = None
        # The visitor's phone rings without early media: the owner should hear our ringback.
        self._ringback_wanted = False
        self._ringback_playing = False
        self._closed = False

    # -- ringback ----------------------------------------------------------------------------

    async def follow_visitor(self, event: LegEvent) -> None:
        """Start or stop the ringback after an event of the visitor's leg."""
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
                self._renderer, cadence, self._config.ringback_s, self.codec
            )
            if not self._ringback_wanted or self._prompt_playing or self._closed:
                return
            self._ringback_playing = True
            await self._media.play_to_owner(tone.path)
            if not self._ringback_wanted:  # answered while play media was on its way
                await self._stop_ringback(force=True)
        except Exception:
            # Only a comfort: the call goes on in silence.
            log.warning("callback %s: no ringback", self._request_ref, exc_info=True)

    async def _stop_ringback(self, *, force: bool = False) -> None:
        self._ringback_wanted = False
        if self._ringback_playing or force:
            self._ringback_playing = False
            await self._media.stop_prompt()

    # -- prompts -----------------------------------------------------------------------------

    async def play_prompt(self, kind: PromptKind, text: str, *, language: str = "en") -> None:
        """Play `text` in `language` (the owner's), with that language's espeak-ng voice."""
        rendered = await self._renderer.render(
            text,
            language=espeak_voice_for(language),
            voice=self._config.prompt_voice,
            codec=self.codec,
        )
        self._cancel_prompt_timer()
        self._prompt_generation += 1
        generation = self._prompt_generation
        self._prompt_playing = True
        self._ringback_playing = False  # rtpengine replaces it with the prompt
        duration = await self._media.play_to_owner(rendered.path)
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
            await self._media.stop_prompt()

    def _cancel_prompt_timer(self) -> None:
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None

    def close(self) -> None:
        """The callback is closing: nothing is reported or started any more."""
        self._closed = True
        self._prompt_generation += 1
        self._cancel_prompt_timer()
