"""Ringback tones: the national cadence, rendered once as G.711 through sox."""

from __future__ import annotations

import struct
from pathlib import Path

from callnow.telephony.prompts import SAMPLE_RATE, PromptRenderer, wav_duration
from callnow.telephony.tones import (
    DOUBLE_RING,
    EUROPE,
    NORTH_AMERICA,
    cadence_for,
    render_ringback,
    ringback_pcm,
)


def test_each_region_gets_the_cadence_its_callers_know() -> None:
    assert cadence_for("AU") is DOUBLE_RING and cadence_for("gb") is DOUBLE_RING
    assert cadence_for("US") is NORTH_AMERICA
    assert cadence_for("DE") is EUROPE


def test_the_double_ring_is_on_off_on_then_two_seconds_of_silence() -> None:
    pcm = ringback_pcm(DOUBLE_RING, 3.0)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert len(samples) == 3 * SAMPLE_RATE

    def loud(start_s: float, end_s: float) -> bool:
        window = samples[int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)]
        return max(abs(s) for s in window) > 1000

    assert loud(0.0, 0.4) and not loud(0.41, 0.59) and loud(0.6, 1.0)
    assert not loud(1.01, 2.99)


async def test_rendered_once_as_g711_and_served_from_the_cache_after(tmp_path: Path) -> None:
    renderer = PromptRenderer(tmp_path)
    first = await render_ringback(renderer, EUROPE, 10, "PCMA")
    again = await render_ringback(renderer, EUROPE, 10, "PCMA")
    assert (first.cached, again.cached) == (False, True)
    assert first.path == again.path and abs(wav_duration(first.path) - 10) < 0.01
    with first.path.open("rb") as wav:
        header = wav.read(36)
    assert struct.unpack("<H", header[20:22])[0] == 6  # WAVE_FORMAT_ALAW
