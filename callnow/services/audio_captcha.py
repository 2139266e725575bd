"""The audio CAPTCHA: each challenge's digits spoken by espeak-ng in a voice, speed and pitch of
their own, over noise and quieter distractors, so recordings of stock voices match nothing.

A listener hears six clear digits, each louder than anything around it, with a pause before
the next. A template-matching machine meets, for every digit, one of about 300 voices (accent,
variant) at a random speed and pitch, so no single recording per digit fits; reversed digits
(the same sounds, no meaning to the ear) and digit-like words ("tree", "fife", "heaven") where
a matcher looks for peaks; and pink noise under it all. docs/security.md says how this is
measured and how intelligibility is judged (tests/services/test_audio_captcha.py).

The randomness is seeded from the challenge, so fetching one challenge's audio again gives the
same clip: averaging several renderings of one challenge learns nothing.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng's English accents that ship with it (no MBROLA data needed).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd")
# Its voice variants, less those a listener may not follow (whisper, robots, demonic).
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "adam", "Alex", "Andy", "annie",
    "aunty", "belinda", "benjamin", "caleb", "david", "ed", "edward", "john", "linda",
    "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis",
    "victor", "zac", "grandma", "grandpa", "croak", "shelby",
)  # fmt: skip
# Words that sound like digits without being one.
DISTRACTOR_WORDS = (
    "tree", "free", "fife", "heaven", "ate", "mine", "won", "tune", "floor", "sticks",
    "hero", "wait", "ten", "fix", "tie", "door", "nun", "sieve", "fort", "line",
)  # fmt: skip
SPEED_WPM = (135, 185)
PITCH = (10, 90)
GAP_S = (0.45, 0.9)
LEAD_S = (0.3, 0.7)
DISTRACTORS = (5, 9)
DISTRACTOR_GAIN = (0.22, 0.35)  # amplitude against a digit's 1.0: about -13 to -9 dB
NOISE_GAIN = (0.05, 0.09)  # of sox's full-scale pink noise
SPEECH_RMS = 3000.0  # every utterance's loudness before its gain (16-bit samples)
ESPEAK_RATE = 22050
OUTPUT_RATE = 16000
_TIMEOUT_S = 10


class AudioCaptchaError(RuntimeError):
    """espeak-ng or sox is missing or failed."""


@dataclass(frozen=True)
class Utterance:
    """One spoken item of a clip, where and how it was said."""

    text: str
    kind: str  # "digit", "word" (a distractor) or "reversed" (a digit played backwards)
    voice: str
    speed: int
    pitch: int
    start_s: float
    duration_s: float
    gain: float


@dataclass(frozen=True)
class Clip:
    wav: bytes
    utterances: tuple[Utterance, ...]
    noise_gain: float
    duration_s: float


def speak(text: str, voice: str, speed: int, pitch: int) -> array[int]:
    """espeak-ng's 16-bit mono samples at 22,050 Hz for `text` (a word from our own lists)."""
    try:
        done = subprocess.run(
            ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch), text],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AudioCaptchaError(f"espeak-ng failed: {exc}") from exc
    data = done.stdout
    at = data.find(b"data")  # a streamed WAV: its sizes are placeholders, the data runs to EOF
    if at < 0:
        raise AudioCaptchaError("espeak-ng gave no audio")
    body = data[at + 8 :]
    samples = array("h")
    samples.frombytes(body[: len(body) - len(body) % 2])
    return samples


def _voice(rng: random.Random) -> tuple[str, int, int]:
    voice = f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}"
    return voice, rng.randint(*SPEED_WPM), rng.randint(*PITCH)


def rms(samples: array[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def _overlaps(a: Utterance, start: float, duration: float) -> bool:
    return a.start_s < start + duration and start < a.start_s + a.duration_s


def _plan(answer: str, rng: random.Random) -> list[tuple[Utterance, array[int]]]:
    placed: list[tuple[Utterance, array[int]]] = []
    at = rng.uniform(*LEAD_S)
    for digit in answer:
        voice, speed, pitch = _voice(rng)
        samples = speak(DIGIT_WORDS[int(digit)], voice, speed, pitch)
        duration = len(samples) / ESPEAK_RATE
        placed.append((Utterance(digit, "digit", voice, speed, pitch, at, duration, 1.0), samples))
        at += duration + rng.uniform(*GAP_S)
    total = at
    digits = [u for u, _ in placed]
    distractors: list[Utterance] = []
    for _ in range(rng.randint(*DISTRACTORS)):
        voice, speed, pitch = _voice(rng)
        if rng.random() < 0.5:
            text, kind = rng.choice(DISTRACTOR_WORDS), "word"
            samples = speak(text, voice, speed, pitch)
        else:
            text, kind = rng.choice(DIGIT_WORDS), "reversed"
            samples = speak(text, voice, speed, pitch)
            samples.reverse()
        duration = len(samples) / ESPEAK_RATE
        # At most one distractor over any digit, so each digit stays clearly on top.
        for _try in range(10):
            start = rng.uniform(0.0, max(0.0, total - duration))
            crowded = [
                d
                for d in digits
                if _overlaps(d, start, duration)
                and any(_overlaps(d, o.start_s, o.duration_s) for o in distractors)
            ]
            if not crowded:
                break
        else:
            continue
        gain = rng.uniform(*DISTRACTOR_GAIN)
        utterance = Utterance(text, kind, voice, speed, pitch, start, duration, gain)
        distractors.append(utterance)
        placed.append((utterance, samples))
    return placed


def render(answer: str, seed: bytes) -> Clip:
    """The clip for `answer` (digits), the same for the same seed."""
    if not answer.isdigit() or len(answer) > 12:
        raise ValueError("an audio CAPTCHA speaks up to 12 digits")
    if shutil.which("sox") is None:
        raise AudioCaptchaError("sox is not installed")
    rng = random.Random(seed)
    placed = _plan(answer, rng)
    duration = max(u.start_s + u.duration_s for u, _ in placed) + rng.uniform(*LEAD_S)
    noise_gain = rng.uniform(*NOISE_GAIN)
    with tempfile.TemporaryDirectory(prefix="callnow-captcha-") as folder:
        inputs: list[str] = []
        for n, (utterance, samples) in enumerate(placed):
            path = Path(folder) / f"{n}.raw"
            lead = bytes(2 * round(utterance.start_s * ESPEAK_RATE))
            path.write_bytes(lead + samples.tobytes())
            # Every voice brought to one loudness first: `gain` is then the level against a digit.
            level = utterance.gain * SPEECH_RMS / max(1.0, rms(samples))
            inputs += ["-v", f"{level:.4f}", *_raw_input(str(path))]
        # -R: sox's own random numbers repeat too, so one challenge always sounds the same.
        noise = f"|sox -R -n -r {ESPEAK_RATE} -c 1 -b 16 -e signed -t raw - synth {duration:.2f} "
        noise += "pinknoise"
        inputs += ["-v", f"{noise_gain:.4f}", *_raw_input(noise)]
        # To a file, not a pipe: a WAV sox streams carries placeholder sizes. -R: its dither
        # repeats too.
        out = Path(folder) / "clip.wav"
        command = ["sox", "-R", "-m", *inputs, "-b", "16", str(out)]
        command += ["rate", str(OUTPUT_RATE), "gain", "-n", "-1"]
        try:
            subprocess.run(command, capture_output=True, timeout=_TIMEOUT_S, check=True)
            wav = out.read_bytes()
        except (OSError, subprocess.SubprocessError) as exc:
            raise AudioCaptchaError(f"sox failed: {exc}") from exc
    return Clip(wav, tuple(u for u, _ in placed), noise_gain, duration)


def _raw_input(name: str) -> list[str]:
    return ["-t", "raw", "-r", str(ESPEAK_RATE), "-c", "1", "-b", "16", "-e", "signed", name]
