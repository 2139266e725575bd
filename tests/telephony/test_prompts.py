"""Prompt rendering with Debian's espeak-ng and sox, cached on disk."""

from __future__ import annotations

import asyncio
import struct
import subprocess
from pathlib import Path

import pytest

from callnow.i18n import SHIPPED
from callnow.telephony.prompts import (
    ESPEAK_VOICES,
    PromptRenderer,
    PromptRenderError,
    cache_key,
    espeak_voice_for,
    prompt_codec_for,
    wav_duration,
)

WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW = 6, 7


def wav_format(path: Path) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from the fmt chunk."""
    data = path.read_bytes()
    at = data.index(b"fmt ") + 8
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, at)
    return tag, channels, rate, bits


def sox_duration(path: Path) -> float:
    """The duration as sox sees it: a second opinion on our RIFF reading."""
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


async def test_renders_8khz_mono_g711_ulaw_wav_with_its_duration(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path / "cache")
    prompt = await renderer.render("Call request from Mary, 0 2 9 0 3.", language="en")

    assert prompt.path.is_absolute() and prompt.path.parent == tmp_path / "cache"
    assert not prompt.cached
    # Already in the phone's codec: rtpengine's `play media` then costs ~1 ms, not ~14 ms.
    assert wav_format(prompt.path) == (WAVE_FORMAT_MULAW, 1, 8000, 8)
    assert prompt.duration_s == pytest.approx(sox_duration(prompt.path), abs=0.001)
    assert prompt.duration_s > 1.0  # a dozen words do not fit in a second


async def test_pcma_is_rendered_as_a_separate_alaw_file(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    ulaw = await renderer.render("Press 1 to call back.")
    alaw = await renderer.render("Press 1 to call back.", codec="PCMA")
    assert ulaw.path != alaw.path
    assert wav_format(alaw.path) == (WAVE_FORMAT_ALAW, 1, 8000, 8)
    assert alaw.duration_s == pytest.approx(ulaw.duration_s, abs=0.001)
    with pytest.raises(ValueError, match="PCMU or PCMA"):
        await renderer.render("Press 1 to call back.", codec="G722")


def test_wav_duration_reads_pcm_and_refuses_what_is_not_a_wav(tmp_path: Path) -> None:
    pcm = tmp_path / "pcm.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(pcm), "trim", "0", "1.5"],
        check=True,
    )
    assert wav_duration(pcm) == pytest.approx(1.5)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError):
        wav_duration(junk)


def sdp(formats: str, *rtpmaps: str) -> str:
    lines = ["v=0", "c=IN IP4 127.0.0.1", f"m=audio 4000 RTP/AVP {formats}"]
    return "\r\n".join([*lines, *(f"a=rtpmap:{m}" for m in rtpmaps)]) + "\r\n"


@pytest.mark.parametrize(
    ("answer", "codec"),
    [
        (sdp("0 8 101", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"), "PCMU"),
        (sdp("8 0 101", "101 telephone-event/8000"), "PCMA"),  # static types need no rtpmap
        (sdp("101 8", "101 telephone-event/8000"), "PCMA"),  # events are not what is played
        (sdp("9 8", "9 G722/8000"), "PCMU"),  # rtpengine transcodes anything else
        (sdp("96", "96 pcma/8000"), "PCMA"),  # a dynamic type, names are case-insensitive
        ("", "PCMU"),
        (None, "PCMU"),
    ],
)
def test_prompt_codec_follows_the_first_audio_codec_of_the_answer(
    answer: str | None, codec: str
) -> None:
    assert prompt_codec_for(answer) == codec


async def test_second_render_is_a_cache_hit(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    first = await renderer.render("Press 1 to call back.")
    mtime = first.path.stat().st_mtime_ns

    second = await PromptRenderer(tmp_path).render("Press 1 to call back.")  # a new process, too

    assert second.cached
    assert (second.path, second.duration_s) == (first.path, first.duration_s)
    assert second.path.stat().st_mtime_ns == mtime  # not rewritten


async def test_text_language_and_voice_each_select_a_different_file(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    plain = await renderer.render("Hello")
    other_voice = await renderer.render("Hello", voice="f3")
    other_text = await renderer.render("Hello there")
    assert len({plain.path, other_voice.path, other_text.path}) == 3
    assert plain.path.name == f"{cache_key('Hello', 'en', None)}.wav"


async def test_concurrent_renders_of_one_text_leave_one_complete_file(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    results = await asyncio.gather(*(renderer.render("Two, please.") for _ in range(3)))
    assert len({r.path for r in results}) == 1
    assert [r.cached for r in results].count(False) == 1
    # no temporary files left behind next to the cache entry
    assert sorted(p.name for p in tmp_path.iterdir()) == [results[0].path.name]


async def test_text_that_looks_like_an_option_is_spoken_not_parsed(tmp_path: Path) -> None:
    target = tmp_path / "written-by-option.wav"
    prompt = await PromptRenderer(tmp_path / "cache").render(f"-w {target}")
    assert prompt.duration_s > 0.5  # the words were spoken...
    assert not target.exists()  # ...and not taken as espeak-ng's "write to file" option


@pytest.mark.parametrize(
    ("text", "language", "voice"),
    [("", "en", None), ("   ", "en", None), ("Hi", "-w", None), ("Hi", "en", "f3 --x")],
)
async def test_bad_arguments_are_refused_before_running_anything(
    tmp_path: Path, text: str, language: str, voice: str | None
) -> None:
    with pytest.raises(ValueError):
        await PromptRenderer(tmp_path).render(text, language=language, voice=voice)


async def test_unknown_language_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(PromptRenderError):
        await PromptRenderer(tmp_path).render("Hello", language="xx-nonexistent")
    assert not any(tmp_path.iterdir())  # nothing half-written is left in the cache


async def test_missing_espeak_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(PromptRenderError, match="not installed"):
        await PromptRenderer(tmp_path, espeak="espeak-ng-missing").render("Hello")


# Shipped languages (callnow.i18n.SHIPPED) and a short sentence in each.
GREETINGS = {
    "en": "Press 1 to call back now.",
    "de": "Drücken Sie 1, um jetzt zurückzurufen.",
    "fr": "Appuyez sur 1 pour rappeler maintenant.",
    "es": "Pulse 1 para devolver la llamada ahora.",
    "it": "Prema 1 per richiamare ora.",
    "pt": "Pressione 1 para ligar de volta agora.",
    "nl": "Druk op 1 om nu terug te bellen.",
    "pl": "Naciśnij 1, aby oddzwonić teraz.",
    "ja": "いま おりかえすなら 1 を おして ください。",
    "ar": "اِضْغَطْ 1 لِمُعاوَدَةِ الاتِّصالِ الآنَ.",
}


def test_every_shipped_language_has_an_installed_espeak_voice() -> None:
    assert set(ESPEAK_VOICES) == set(SHIPPED)
    assert espeak_voice_for("fr") == "fr" and espeak_voice_for("pt-BR") == "pt"
    assert espeak_voice_for("xx") == "en"
    for language, text in GREETINGS.items():
        # espeak-ng exits 1 ("voice does not exist") for a voice that is not installed.
        subprocess.run(
            ["espeak-ng", "-q", "-v", espeak_voice_for(language), text],
            check=True,
            capture_output=True,
        )


async def test_the_same_words_in_two_languages_are_two_cached_files(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    text = "Mary, 0 6, 12, 34, 56, 78."
    english = await renderer.render(text, language="en")
    french = await renderer.render(text, language="fr")

    assert cache_key(text, "en", None) != cache_key(text, "fr", None)
    assert english.path != french.path
    assert english.path.read_bytes() != french.path.read_bytes()  # another voice said it
    assert (await renderer.render(text, language="fr")).cached
