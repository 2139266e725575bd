"""Image validation: a random image CAPTCHA with an audio alternative.

The audio is spoken per challenge by espeak-ng in varied voices over noise and distractors
(`audio_captcha`); its randomness is seeded from the challenge, and the last few clips are kept,
so fetching one challenge's audio again costs nothing and teaches nothing.

A challenge is a signed token (random nonce, profile, issue time), so showing one writes nothing:
a flood of page views is a flood of reads at most. The answer is derived from the token with an
HMAC of the server's secret, so the image and the audio are rendered on demand from the token
alone. A challenge is single use (spent on the first answer, right or wrong: its nonce is stored,
and a unique key refuses it again), expires after `abuse.captcha_ttl_s` (5 minutes by default)
and is bound to one profile. Spent nonces are purged once their tokens would be expired anyway.
Digits only, because the audio alternative speaks digits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from captcha.image import ImageCaptcha
from sqlalchemy.orm import Session

from callnow.services import audio_captcha
from callnow.store import captcha as spent_captchas

log = logging.getLogger(__name__)

ANSWER_DIGITS = 6
# Tokens are about 50 characters; anything longer is not ours and is refused before parsing.
MAX_TOKEN_LENGTH = 64
_NONCE_BYTES = 12
_MAC_BYTES = 16
# Clocks of several web workers may differ a little; a token from further ahead is forged.
_CLOCK_SKEW = timedelta(seconds=30)
_image = ImageCaptcha(width=220, height=80)
# Clips kept in memory, so a repeated fetch of a live challenge is not rendered again.
AUDIO_CACHE_SIZE = 64


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class _Challenge:
    nonce: str
    profile_id: int
    issued_at: int  # seconds since the epoch


class CaptchaBook:
    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._key = hashlib.sha256(f"captcha:{secret_key}".encode()).digest()
        self._signing_key = hashlib.sha256(f"captcha-token:{secret_key}".encode()).digest()
        self._ttl = timedelta(seconds=ttl_s)
        self._clips: OrderedDict[str, bytes] = OrderedDict()
        self._clips_lock = threading.Lock()

    def answer_for(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        return str(int.from_bytes(digest[:8], "big") % 10**ANSWER_DIGITS).zfill(ANSWER_DIGITS)

    @staticmethod
    def _hash(answer: str) -> str:
        return hashlib.sha256(answer.encode()).hexdigest()

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._signing_key, body.encode(), hashlib.sha256).digest()
        return _b64(digest[:_MAC_BYTES])

    def issue(self, profile_id: int, now: datetime) -> str:
        """A fresh challenge for this profile's page; nothing is written."""
        nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
        body = f"{nonce}.{profile_id:x}.{int(now.timestamp()):x}"
        return f"{body}.{self._mac(body)}"

    def _live(self, token: str, profile_id: int, now: datetime) -> _Challenge | None:
        """The challenge if the token is ours, for this profile and not expired (spent or not)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        body, _, mac = token.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        nonce, profile_hex, issued_hex = body.split(".")
        challenge = _Challenge(nonce, int(profile_hex, 16), int(issued_hex, 16))
        age = now - datetime.fromtimestamp(challenge.issued_at, now.tzinfo)
        if challenge.profile_id != profile_id or not -_CLOCK_SKEW <= age < self._ttl:
            return None
        return challenge

    def _showable(self, session: Session, token: str, profile_id: int, now: datetime) -> bool:
        # Signature, profile and age first, so forged or stale tokens cost no query; a spent
        # challenge is not shown again (one primary-key read, never a write).
        challenge = self._live(token, profile_id, now)
        return challenge is not None and not spent_captchas.is_spent(session, challenge.nonce)

    def image(self, session: Session, token: str, profile_id: int, now: datetime) -> bytes | None:
        if not self._showable(session, token, profile_id, now):
            return None
        return _image.generate(self.answer_for(token)).getvalue()

    def audio(self, session: Session, token: str, profile_id: int, now: datetime) -> bytes | None:
        if not self._showable(session, token, profile_id, now):
            return None
        with self._clips_lock:
            if token in self._clips:
                self._clips.move_to_end(token)
                return self._clips[token]
        seed = hmac.new(self._key, f"audio:{token}".encode(), hashlib.sha256).digest()
        try:
            clip = audio_captcha.render(self.answer_for(token), seed).wav
        except audio_captcha.AudioCaptchaError:
            log.exception("the audio CAPTCHA could not be rendered")
            return None  # the page still offers the image
        with self._clips_lock:
            self._clips[token] = clip
            while len(self._clips) > AUDIO_CACHE_SIZE:
                self._clips.popitem(last=False)
        return clip

    def verify(
        self, session: Session, token: str, answer: str, profile_id: int, now: datetime
    ) -> bool:
        """Spend the challenge and say whether the answer was right; a replay is always wrong."""
        challenge = self._live(token, profile_id, now)
        if challenge is None or not spent_captchas.spend(session, challenge.nonce, now):
            return False
        # A spent nonce older than the TTL can no longer pass the age check: forget a few.
        spent_captchas.purge_expired(session, now - self._ttl - _CLOCK_SKEW)
        given = "".join(c for c in answer if c.isdigit())[:ANSWER_DIGITS]
        return hmac.compare_digest(self._hash(self.answer_for(token)), self._hash(given))
