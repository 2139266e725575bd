"""Render prompt text to telephone audio: espeak-ng, then sox to an 8 kHz mono G.711 WAV.

The file is already in the codec the owner's phone hears (`PCMU` or `PCMA`, see
`prompt_codec_for`), because rtpengine 10.5's `play media` costs far more CPU on anything else,
growing with the file's length and spent before the reply is sent
(docs/decisions/0008-g711-prompts.md).

Each language is spoken by its own espeak-ng voice (`espeak_voice_for`: French by `fr`, German
by `de`, ...); the voice name is the `language` a prompt is rendered in.

Files are cached in `cache_dir` under the sha256 of (text, language, voice, codec, format
version), so the same words in two languages are two files, and a prompt said often ("press 1
to call back") is rendered once. Writes are atomic (temporary file in the same directory, then
`os.replace`), so a concurrent reader, including rtpengine's `play media`, never sees half a
file. What the prompt says is the engine's
business; this module only renders the text it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 8000
# Bump when the rendering pipeline changes, so old cache entries are not reused.
_FORMAT_VERSION = 2
# sox's name of each G.711 law, by its SDP encoding name.
_SOX_ENCODING = {"PCMU": "u-law", "PCMA": "a-law"}
DEFAULT_CODEC = "PCMU"
# Static RTP payload types (RFC 3551) that matter here.
_STATIC_PAYLOAD_TYPES = {"0": "PCMU", "8": "PCMA", "13": "CN"}
_NOT_AUDIO_CODECS = {"TELEPHONE-EVENT", "CN"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
MAX_TEXT_CHARS = 5000
# The espeak-ng voice of each language CallNow ships prompts in (`espeak-ng --voices`).
ESPEAK_VOICES = {
    "en": "en",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "it": "it",
    "pt": "pt",
    "nl": "nl",
    "pl": "pl",
    "ja": "ja",
    "ar": "ar",
}


def espeak_voice_for(language: str) -> str:
    """The espeak-ng voice for an ISO 639-1 `language`; English for one without a voice."""
    return ESPEAK_VOICES.get(language.split("-")[0].lower(), "en")


class PromptRenderError(RuntimeError):
    """espeak-ng or sox failed, timed out, or produced no audio."""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    path: Path  # absolute: rtpengine opens it by name
    duration_s: float
    cached: bool  # True when served from the cache without rendering


def cache_key(text: str, language: str, voice: str | None, codec: str = DEFAULT_CODEC) -> str:
    material = json.dumps([_FORMAT_VERSION, text, language, voice, codec], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def prompt_codec_for(sdp: str | None) -> str:
    """The G.711 law to render prompts in for a phone that answered with `sdp`.

    rtpengine plays a prompt in the first audio codec of that phone's SDP: PCMA when that is
    PCMA, otherwise PCMU (for any other codec rtpengine transcodes from the file anyway).
    """
    if not sdp:
        return DEFAULT_CODEC
    formats: list[str] = []
    names: dict[str, str] = {}
    for line in sdp.splitlines():
        if line.startswith("m=audio ") and not formats:
            formats = line.split()[3:]
        elif line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[pt] = rest.split("/", 1)[0].upper()
    for pt in formats:
        name = names.get(pt) or _STATIC_PAYLOAD_TYPES.get(pt, "")
        if name not in _NOT_AUDIO_CODECS:
            return name if name in _SOX_ENCODING else DEFAULT_CODEC
    return DEFAULT_CODEC


def wav_duration(path: Path) -> float:
    """Seconds of audio in a WAV file of any sample format (PCM, G.711 ...).

    Python's `wave` reads only integer PCM, so the RIFF chunks are walked here: the `data`
    chunk's size divided by the `fmt ` chunk's byte rate.
    """
    with path.open("rb") as wav:
        riff = wav.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:] != b"WAVE":
            raise ValueError(f"{path.name} is not a WAV file")
        byte_rate = 0
        while header := wav.read(8):
            if len(header) < 8:
                break
            chunk, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"fmt ":
                fmt = wav.read(size)
                byte_rate = int.from_bytes(fmt[8:12], "little")
                wav.seek(size & 1, 1)
            elif chunk == b"data":
                if byte_rate <= 0:
                    break
                return size / byte_rate
            else:
                wav.seek(size + (size & 1), 1)
    raise ValueError(f"{path.name} has no usable fmt/data chunks")


class PromptRenderer:
    """`await renderer.render("Call request from Mary", language="en")` -> RenderedPrompt.

    `voice` is an espeak-ng variant (e.g. "f3", "m2"), combined as `-v en+f3`; `codec` is
    "PCMU" (default) or "PCMA".
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        espeak: str = "espeak-ng",
        sox: str = "sox",
        timeout_s: float = 15.0,
        words_per_minute: int = 150,
    ) -> None:
        self.cache_dir = cache_dir.resolve()
        self.espeak = espeak
        self.sox = sox
        self.timeout_s = timeout_s
        self.words_per_minute = words_per_minute
        self._inflight: dict[str, asyncio.Task[None]] = {}
        # Durations of files seen, so a cache hit costs a stat, not opening the file.
        self._durations: dict[str, float] = {}

    def path_for(
        self, text: str, language: str = "en", voice: str | None = None, codec: str = DEFAULT_CODEC
    ) -> Path:
        return self.cache_dir / f"{cache_key(text, language, voice, codec)}.wav"

    def _duration(self, target: Path) -> float:
        duration = self._durations.get(target.name)
        if duration is None:
            duration = self._durations[target.name] = wav_duration(target)
        return duration

    async def render(
        self,
        text: str,
        language: str = "en",
        voice: str | None = None,
        *,
        codec: str = DEFAULT_CODEC,
    ) -> RenderedPrompt:
        if not text.strip():
            raise ValueError("prompt text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"prompt text is longer than {MAX_TEXT_CHARS} characters")
        for name, value in (("language", language), ("voice", voice)):
            if value is not None and not _NAME_RE.match(value):
                raise ValueError(f"invalid {name} {value!r}")
        if codec not in _SOX_ENCODING:
            raise ValueError(f"prompts are rendered as PCMU or PCMA, not {codec!r}")
        target = self.path_for(text, language, voice, codec)
        # The file is checked every time (rtpengine opens it by name; it may have been cleaned
        # away), its duration only once.
        if target.exists():
            return RenderedPrompt(target, self._duration(target), cached=True)
        # One render per file at a time; concurrent callers wait for it and share the result.
        task = self._inflight.get(target.name)
        cached = task is not None
        if task is None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            task = asyncio.create_task(self._render_to(target, text, language, voice, codec))
            self._inflight[target.name] = task
            task.add_done_callback(lambda t: self._render_done(target.name, t))
        # shield: one caller giving up must not cancel the render the others wait for
        await asyncio.shield(task)
        return RenderedPrompt(target, self._duration(target), cached=cached)

    def _render_done(self, name: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller was cancelled

    async def _render_to(
        self, target: Path, text: str, language: str, voice: str | None, codec: str
    ) -> None:
        espeak_voice = f"{language}+{voice}" if voice else language
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".render-") as tmp:
            raw = Path(tmp) / "espeak.wav"
            converted = Path(tmp) / "8k.wav"
            # Text on stdin: no argv length limit, and text starting with "-" is not an option.
            await self._run(
                [
                    self.espeak,
                    "-b",
                    "1",
                    "-v",
                    espeak_voice,
                    "-s",
                    str(self.words_per_minute),
                    "-w",
                    str(raw),
                    "--stdin",
                ],
                stdin=text.encode("utf-8"),
            )
            await self.to_g711(raw, converted, codec)
            if wav_duration(converted) <= 0:
                raise PromptRenderError(f"espeak-ng rendered no audio for {text[:40]!r}")
            # Same filesystem (tmp dir is inside cache_dir), so the rename is atomic.
            os.replace(converted, target)

    async def to_g711(self, source: Path, target: Path, codec: str) -> None:
        """Convert any WAV sox reads to 8 kHz mono `codec` (PCMU or PCMA) at `target`."""
        await self._run(
            [
                self.sox,
                str(source),
                "-r",
                str(SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "8",
                "-e",
                _SOX_ENCODING[codec],
                str(target),
            ],
        )

    async def _run(self, argv: list[str], stdin: bytes | None = None) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise PromptRenderError(f"{argv[0]} is not installed") from None
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(stdin), self.timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise PromptRenderError(f"{argv[0]} timed out after {self.timeout_s:g}s") from None
        if proc.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip()[-500:]
            raise PromptRenderError(f"{argv[0]} exited with {proc.returncode}: {message}")
