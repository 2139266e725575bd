"""Ringback tones for the owner while the visitor's phone rings, as G.711 WAVs for rtpengine.

A carrier that sends early media plays its own ringback (rtpengine relays it to the owner);
one that only answers 180 leaves the owner in silence, so the engine plays one of these.
Cadences are the national ones callers know (ITU-T E.180 supplement 2); the file is rendered
once per cadence, length and law, through sox like the prompts, and cached beside them.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from callnow.telephony.prompts import SAMPLE_RATE, PromptRenderer, RenderedPrompt, wav_duration

# Quiet enough not to startle, loud enough to hear over a handset: about -13 dBm0 per tone.
_AMPLITUDE = 4000


@dataclass(frozen=True, slots=True)
class Cadence:
    """Frequencies (Hz, summed) and on/off periods (seconds), repeated."""

    name: str
    frequencies: tuple[float, ...]
    periods: tuple[tuple[float, float], ...]


# Australia, New Zealand, the UK and Ireland: 400+450 Hz, 0.4 on 0.2 off 0.4 on 2.0 off.
DOUBLE_RING = Cadence("double", (400.0, 450.0), ((0.4, 0.2), (0.4, 2.0)))
# North America: 440+480 Hz, 2 s on, 4 s off.
NORTH_AMERICA = Cadence("north-america", (440.0, 480.0), ((2.0, 4.0),))
# Most of Europe and elsewhere: 425 Hz, 1 s on, 4 s off.
EUROPE = Cadence("europe", (425.0,), ((1.0, 4.0),))

_BY_REGION = {
    "AU": DOUBLE_RING,
    "NZ": DOUBLE_RING,
    "GB": DOUBLE_RING,
    "IE": DOUBLE_RING,
    "US": NORTH_AMERICA,
    "CA": NORTH_AMERICA,
}


def cadence_for(region: str) -> Cadence:
    return _BY_REGION.get(region.upper(), EUROPE)


def ringback_pcm(cadence: Cadence, seconds: float) -> bytes:
    """16-bit little-endian linear samples of `seconds` of the cadence."""
    total = int(seconds * SAMPLE_RATE)
    samples = bytearray()
    position = 0
    while position < total:
        for on_s, off_s in cadence.periods:
            for i in range(int(on_s * SAMPLE_RATE)):
                t = (position + i) / SAMPLE_RATE
                value = sum(math.sin(2 * math.pi * f * t) for f in cadence.frequencies)
                samples += struct.pack("<h", int(_AMPLITUDE * value / len(cadence.frequencies)))
            samples += b"\x00\x00" * int(off_s * SAMPLE_RATE)
            position += int((on_s + off_s) * SAMPLE_RATE)
    return bytes(samples[: total * 2])


def _write_linear(path: Path, cadence: Cadence, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(ringback_pcm(cadence, seconds))


async def render_ringback(
    renderer: PromptRenderer, cadence: Cadence, seconds: float, codec: str
) -> RenderedPrompt:
    """The ringback WAV in `codec`, rendered once and then served from the prompt cache."""
    target = renderer.cache_dir / f"ringback-{cadence.name}-{int(seconds)}s-{codec}.wav"
    if target.exists():
        return RenderedPrompt(target, wav_duration(target), cached=True)
    renderer.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=renderer.cache_dir, prefix=".tone-") as tmp:
        linear = Path(tmp) / "linear.wav"
        # Synthesis takes a CPU-second for a minute of tone: off the event loop.
        await asyncio.to_thread(_write_linear, linear, cadence, seconds)
        converted = Path(tmp) / "g711.wav"
        await renderer.to_g711(linear, converted, codec)
        os.replace(converted, target)  # atomic: rtpengine never opens half a file
    return RenderedPrompt(target, wav_duration(target), cached=False)
