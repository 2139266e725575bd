"""A template-matching solver for audio CAPTCHAs: what broke the old one, turned on the new.

The attacker records one template per digit and voice they can guess, slides each template
over the clip's spectrogram (normalised cross-correlation of log-mel frames, each band's mean
removed) and reads the best non-overlapping matches in time order. It is given every stock
espeak-ng voice we know the clip could start from (its default English voices at default speed
and pitch): it knows which synthesiser we use, not the per-digit voice, speed or pitch.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable
from functools import cache

import numpy as np

from callnow.services.audio_captcha import DIGIT_WORDS, ESPEAK_RATE, speak

RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
BANDS = 26


def wav_samples(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getnchannels() == 1 and reader.getsampwidth() == 2
        rate = reader.getframerate()
        data = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return _resample(data.astype(np.float64), rate)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return samples
    positions = np.arange(0, len(samples) * RATE / rate) * rate / RATE
    return np.interp(positions, np.arange(len(samples)), samples)


@cache
def _mel_filters() -> np.ndarray:
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    edges = np.linspace(mel(np.array(100.0)), mel(np.array(RATE / 2 - 200.0)), BANDS + 2)
    hz = 700 * (10 ** (edges / 2595) - 1)
    bins = np.floor((FRAME + 1) * hz / RATE).astype(int)
    filters = np.zeros((BANDS, FRAME // 2 + 1))
    for b in range(BANDS):
        lo, mid, hi = bins[b], bins[b + 1], bins[b + 2]
        filters[b, lo:mid] = (np.arange(lo, mid) - lo) / max(1, mid - lo)
        filters[b, mid:hi] = (hi - np.arange(mid, hi)) / max(1, hi - mid)
    return filters


def features(samples: np.ndarray) -> np.ndarray:
    """Log-mel frames (frames x bands)."""
    if len(samples) < FRAME:
        samples = np.pad(samples, (0, FRAME - len(samples)))
    count = 1 + (len(samples) - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    frames = samples[index] * np.hamming(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel = np.log(power @ _mel_filters().T + 1e-3)
    return logmel


def _trimmed(samples: np.ndarray) -> np.ndarray:
    """A template without espeak's leading and trailing silence."""
    loud = np.flatnonzero(np.abs(samples) > 0.05 * np.abs(samples).max())
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


@cache
def template(digit: int, voice: str, speed: int = 175, pitch: int = 50) -> np.ndarray:
    raw = np.array(speak(DIGIT_WORDS[digit], voice, speed, pitch), dtype=np.float64)
    return features(_resample(_trimmed(raw), ESPEAK_RATE))


def _ncc(clip: np.ndarray, tmpl: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of a template at each frame offset of the clip."""
    n = len(tmpl)
    if len(clip) < n:
        return np.full(1, -1.0)
    windows = np.lib.stride_tricks.sliding_window_view(clip, (n, clip.shape[1]))[:, 0]
    windows = windows - windows.mean(axis=(1, 2), keepdims=True)
    t = tmpl - tmpl.mean()
    num = np.einsum("wij,ij->w", windows, t)
    den = np.sqrt(np.einsum("wij,wij->w", windows, windows) * np.sum(t * t)) + 1e-9
    return num / den


def solve(wav: bytes, digits: int, voices: Iterable[str]) -> str:
    """The solver's reading of a clip: `digits` digits, best template matches in time order."""
    clip = features(wav_samples(wav))
    found: list[tuple[float, int, int, int]] = []  # (score, frame, length, digit)
    for voice in voices:
        for digit in range(10):
            tmpl = template(digit, voice)
            scores = _ncc(clip, tmpl)
            # A short template fits inside a longer word: weigh matches by how much they cover.
            weight = np.sqrt(len(tmpl))
            for frame in np.argsort(scores)[::-1][:40]:
                found.append((float(scores[frame]) * weight, int(frame), len(tmpl), digit))
    found.sort(reverse=True)
    chosen: list[tuple[int, int, int]] = []
    for _score, frame, length, digit in found:
        centre = frame + length // 2
        if all(abs(centre - (f + n // 2)) > max(length, n) // 2 for f, n, _ in chosen):
            chosen.append((frame, length, digit))
        if len(chosen) == digits:
            break
    return "".join(str(d) for _, _, d in sorted(chosen))


def recognise_in_place(
    wav: bytes, start_s: float, duration_s: float, voice: str, speed: int, pitch: int
) -> int:
    """The digit best matching one known span of the clip, with templates in the known voice:
    a listener who has tuned in to that voice. Used to judge intelligibility, not to attack."""
    clip = features(wav_samples(wav))
    lo = max(0, int(start_s * RATE / HOP) - 10)
    hi = int((start_s + duration_s) * RATE / HOP) + 10
    span = clip[lo:hi]
    best = []
    for digit in range(10):
        tmpl = template(digit, voice, speed, pitch)
        best.append(float(_ncc(span, tmpl[: len(span)]).max()))
    return int(np.argmax(best))
