"""`LiveChannel`'s own promises, against stand-ins for rtpengine and the prompt renderer:
`PromptFinished` is timed from the prompt's duration and never reported for a prompt that was
stopped or replaced; RFC 4733 digits count only from the owner's tag; a media failure on
answer ends the leg instead of letting the flow go on without audio."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callnow.domain.calls import LegRole
from callnow.domain.flow import (
    Digit,
    DigitSource,
    Event,
    LegAnswered,
    LegEnded,
    LegRinging,
    PromptFinished,
    PromptKind,
)
from callnow.engine.live.channel import ChannelConfig, LiveChannel
from callnow.telephony.dtmf_log import DtmfEvent
from callnow.telephony.prompts import RenderedPrompt
from callnow.telephony.sip import Answered, CallerId, Ended, EndedBy, Ringing
from tests.support.waiting import until

PROMPT_S = 0.15
NOW = datetime(2026, 11, 26, tzinfo=UTC)


class FakeMedia:
    owner_tag = "owner"
    call_id = "callnow-test"

    def __init__(self, duration: float | None = PROMPT_S, play_delay: float = 0.0) -> None:
        self.duration = duration
        self.play_delay = play_delay
        self.calls: list[tuple[Any, ...]] = []

    async def play_to_owner(self, path: Path) -> float | None:
        self.calls.append(("play", path.name))
        await asyncio.sleep(self.play_delay)
        return self.duration

    async def stop_prompt(self) -> None:
        self.calls.append(("stop",))

    async def delete(self) -> None:
        self.calls.append(("delete",))


class FakeRenderer:
    def __init__(self) -> None:
        self.codecs: list[str] = []
        self.voices: list[str] = []

    async def render(
        self, text: str, language: str = "en", voice: str | None = None, *, codec: str = "PCMU"
    ) -> RenderedPrompt:
        self.codecs.append(codec)
        self.voices.append(language)
        return RenderedPrompt(Path(f"/prompts/{text}.wav"), duration_s=PROMPT_S, cached=True)


def channel(media: FakeMedia) -> tuple[LiveChannel, list[Event]]:
    events: list[Event] = []
    config = ChannelConfig(
        owner_uri_template="sip:{internal}@127.0.0.1:5080",
        trunk_uri_template="sip:{e164}@127.0.0.1:5090",
        trunk_credentials=None,
        owner_ring_timeout_s=30,
        visitor_ring_timeout_s=45,
    )
    live = LiveChannel(
        request_ref="r1",
        events=events.append,
        # Stand-ins for the SIP stack (no leg is dialled here), rtpengine and the renderer.
        stack=None,  # type: ignore[arg-type]  # see above
        media=media,  # type: ignore[arg-type]  # see above
        renderer=FakeRenderer(),  # type: ignore[arg-type]  # see above
        config=config,
        visitor=CallerId("Mary", "+61290375678"),
    )
    return live, events


async def test_prompt_finished_is_reported_once_after_the_prompts_duration() -> None:
    live, events = channel(FakeMedia())
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    assert events == []  # not before the audio could have been heard
    await asyncio.sleep(PROMPT_S * 3)
    assert events == [PromptFinished()]


async def test_wav_duration_is_used_when_rtpengine_reports_none() -> None:
    live, events = channel(FakeMedia(duration=None))
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    await asyncio.sleep(PROMPT_S * 3)
    assert events == [PromptFinished()]


async def test_a_stopped_prompt_is_never_reported_finished() -> None:
    media = FakeMedia()
    live, events = channel(media)
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    await live.stop_prompt()
    await asyncio.sleep(PROMPT_S * 3)
    assert events == []
    assert media.calls == [("play", "hello.wav"), ("stop",)]


async def test_a_prompt_that_already_ended_costs_no_stop_request() -> None:
    media = FakeMedia()
    live, events = channel(media)
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    await asyncio.sleep(PROMPT_S * 3)
    assert events == [PromptFinished()]
    await live.stop_prompt()  # the flow stops it anyway when its PromptFinished is still queued
    assert media.calls == [("play", "hello.wav")]  # nothing left to stop in rtpengine


async def test_a_replaced_prompt_is_reported_once_for_the_new_one() -> None:
    live, events = channel(FakeMedia())
    loop = asyncio.get_running_loop()
    await live.play_prompt(PromptKind.WHISPER, "first")
    await asyncio.sleep(PROMPT_S / 2)
    second_at = loop.time()
    await live.play_prompt(PromptKind.NOTICE, "second")
    # Past the first prompt's end, before the second's: timed from the second's start, so the
    # time starting it took on a busy machine cannot carry the check past its end.
    await asyncio.sleep(second_at + PROMPT_S * 0.75 - loop.time())
    assert events == []
    await asyncio.sleep(PROMPT_S * 2)
    assert events == [PromptFinished()]


async def test_a_prompt_stopped_while_rtpengine_starts_it_is_never_reported() -> None:
    live, events = channel(FakeMedia(play_delay=PROMPT_S))
    playing = asyncio.create_task(live.play_prompt(PromptKind.CONFIRM, "hello"))
    await asyncio.sleep(PROMPT_S / 3)
    await live.stop_prompt()
    await playing
    await asyncio.sleep(PROMPT_S * 3)
    assert events == []


async def test_close_silences_a_playing_prompt_and_deletes_nothing_never_offered() -> None:
    media = FakeMedia()
    live, events = channel(media)
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    await live.close()
    await asyncio.sleep(PROMPT_S * 3)
    assert events == []
    assert ("delete",) not in media.calls  # no offer was made, so no rtpengine call exists


def dtmf(source_tag: str, event: int) -> DtmfEvent:
    return DtmfEvent(
        call_id="callnow-test", source_tag=source_tag, event=event, duration_ms=200, volume=10
    )


async def test_rfc4733_digits_count_only_from_the_owner() -> None:
    live, events = channel(FakeMedia())
    live.on_dtmf(dtmf("visitor", 2))
    live.on_dtmf(dtmf("owner", 1))
    live.on_dtmf(dtmf("owner", 16))  # flash: not a key
    assert events == [Digit("1", DigitSource.RFC4733)]


class FakeLeg:
    """Plays a fixed list of SIP leg events; hangup() ends it locally, as `Leg` does."""

    def __init__(self, *events: Any) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        for event in events:
            self._queue.put_nowait(event)
        self.hung_up: list[str] = []
        self.done = False
        # As a `Leg`: no prepared hangup (crash recovery is tested with real legs).
        self.call_id = "fake-leg"
        self.prepared_hangup = None
        self.on_hangup_prepared = None

    async def __aiter__(self) -> Any:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, Ended):
                return

    async def hangup(self, reason: str = "") -> None:
        if not self.done:
            self.done = True
            self.hung_up.append(reason)
            self._queue.put_nowait(Ended(by=EndedBy.LOCAL, at=NOW, reason=reason))


class BrokenMedia(FakeMedia):
    async def owner_answered(self, sdp: str) -> None:
        raise ConnectionError("rtpengine is gone")


async def test_media_failure_on_answer_ends_the_leg_and_the_flow_never_hears_answered() -> None:
    live, events = channel(BrokenMedia())
    leg = FakeLeg(Ringing(180, "Ringing", NOW), Answered(sdp="v=0\r\n", at=NOW))
    live._adopt(LegRole.OWNER, leg)  # type: ignore[arg-type]  # a FakeLeg stands in for a Leg
    await until(lambda: len(events) >= 2, within_s=2)
    assert events == [LegRinging(LegRole.OWNER), LegEnded(LegRole.OWNER, by_remote=False)]
    assert leg.hung_up == ["media_failed"]


class AnsweringMedia(FakeMedia):
    async def owner_answered(self, sdp: str) -> None:
        self.calls.append(("owner_answered",))


async def test_prompts_are_rendered_in_the_g711_law_the_owner_answered_with() -> None:
    live, events = channel(AnsweringMedia())
    renderer = live._renderer
    assert isinstance(renderer, FakeRenderer)
    await live.play_prompt(PromptKind.CONFIRM, "before the answer")  # not expected; default
    pcma_first = "v=0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    # A FakeLeg stands in for a Leg.
    live._adopt(LegRole.OWNER, FakeLeg(Answered(sdp=pcma_first, at=NOW)))  # type: ignore[arg-type]
    await until(lambda: any(isinstance(event, LegAnswered) for event in events), within_s=2)
    await live.play_prompt(PromptKind.CONFIRM, "hello")
    assert renderer.codecs == ["PCMU", "PCMA"]


async def test_each_prompt_is_rendered_with_the_voice_of_its_language() -> None:
    live, _events = channel(FakeMedia())
    renderer = live._renderer
    assert isinstance(renderer, FakeRenderer)
    await live.play_prompt(PromptKind.CONFIRM, "Demande de rappel", language="fr")
    await live.play_prompt(PromptKind.NOTICE, "Auf Wiederhören.", language="de")
    await live.play_prompt(PromptKind.NOTICE, "Goodbye.")
    assert renderer.voices == ["fr", "de", "en"]


async def test_an_answer_without_sdp_is_a_media_failure_too() -> None:
    live, events = channel(FakeMedia())
    leg = FakeLeg(Answered(sdp=None, at=NOW))
    live._adopt(LegRole.VISITOR, leg)  # type: ignore[arg-type]  # a FakeLeg for a Leg
    await until(lambda: events, within_s=2)
    assert events == [LegEnded(LegRole.VISITOR, by_remote=False)]


class BridgingMedia(FakeMedia):
    def __init__(self, reoffer: str | None) -> None:
        super().__init__()
        self.reoffer = reoffer

    async def visitor_answered(self, sdp: str) -> str | None:
        self.calls.append(("visitor_answered", sdp))
        return self.reoffer

    async def release_owner_audio(self) -> None:
        self.calls.append(("release_owner_audio",))


class ReinvitableLeg(FakeLeg):
    def __init__(self, *events: Any) -> None:
        super().__init__(*events)
        self.reinvites: list[str] = []

    async def reinvite(self, sdp: str, timeout: float = 10.0) -> str | None:
        self.reinvites.append(sdp)
        return "v=0 answer"


async def bridged(reoffer: str | None) -> tuple[BridgingMedia, ReinvitableLeg]:
    media = BridgingMedia(reoffer)
    live, events = channel(media)
    owner = ReinvitableLeg()
    # Fake legs stand in for Legs.
    live.legs[LegRole.OWNER] = owner  # type: ignore[assignment]  # see above
    live._adopt(LegRole.VISITOR, FakeLeg(Answered(sdp="v=0 visitor", at=NOW)))  # type: ignore[arg-type]
    await until(lambda: events, within_s=2)
    await live.bridge()
    if live._background:  # the re-INVITE runs in the background
        await asyncio.wait(set(live._background), timeout=2)
    return media, owner


async def test_bridge_hands_the_visitors_sdp_to_rtpengine() -> None:
    media, owner = await bridged(reoffer=None)
    assert ("visitor_answered", "v=0 visitor") in media.calls
    # The owner's audio, held back while the visitor's phone rang, flows once bridged.
    assert media.calls[-1] == ("release_owner_audio",)
    assert owner.reinvites == []  # rtpengine kept the owner's port: nothing to tell the phone


async def test_bridge_reinvites_the_owner_when_rtpengine_moved_its_port() -> None:
    _, owner = await bridged(reoffer="v=0 moved")
    assert owner.reinvites == ["v=0 moved"]


class OfferingMedia(FakeMedia):
    """An rtpengine whose offer takes `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    async def offer_for_owner(self) -> str:
        self.calls.append(("offer",))
        await asyncio.sleep(self.delay)
        self.calls.append(("offered",))
        return "v=0 owner-offer"


class DialRecorder:
    """A SIP stack that notes each INVITE's SDP and hands back a leg that stays up."""

    def __init__(self) -> None:
        self.sdps: list[str] = []

    async def dial(self, uri: str, *, sdp: str, **_details: Any) -> FakeLeg:
        self.sdps.append(sdp)
        return FakeLeg()


async def test_the_owner_s_media_prepared_early_is_offered_once_and_used_by_the_dial() -> None:
    media = OfferingMedia()
    live, _events = channel(media)
    stack = DialRecorder()
    live._stack = stack  # type: ignore[assignment]  # a recorder stands in for the SIP stack

    live.prepare_owner_media()  # as the callback opens, while its leg row is being written
    live.prepare_owner_media()
    await live.dial_owner("001002")

    assert media.calls == [("offer",), ("offered",)]
    assert stack.sdps == ["v=0 owner-offer"]
    await live.close()


async def test_a_callback_closed_before_dialling_frees_the_media_once_the_offer_landed() -> None:
    media = OfferingMedia(delay=PROMPT_S)
    live, _events = channel(media)

    live.prepare_owner_media()
    await until(lambda: ("offer",) in media.calls)  # the offer is on its way to rtpengine
    await live.close()

    # Deleted after the offer, not before it: rtpengine is left no call that nobody ends.
    assert media.calls == [("offer",), ("offered",), ("delete",)]
