"""Prompt rendering with Debian's espeak-ng and sox, cached on disk."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from callnow.telephony.prompts import PromptRenderer, PromptRenderError, cache_key


async def test_renders_8khz_mono_16bit_wav_with_its_duration(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path / "cache")
    prompt = await renderer.render("Call request from Mary, 0 2 9 0 3.", language="en")

    assert prompt.path.is_absolute() and prompt.path.parent == tmp_path / "cache"
    assert not prompt.cached
    with wave.open(str(prompt.path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert prompt.duration_s == wav.getnframes() / 8000
    assert prompt.duration_s > 1.0  # a dozen words do not fit in a second


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
