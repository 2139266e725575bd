"""Image validation: a random image CAPTCHA with an audio alternative.

A challenge is single use (spent on the first answer, right or wrong), expires after
`abuse.captcha_ttl_s` (5 minutes by default) and is bound to one profile. The answer is derived
from the challenge token with an HMAC of the server's secret, so the image and the audio can be
rendered on demand without keeping the answer anywhere; only its hash is stored, for checking.
Digits only, because the audio alternative speaks digits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callnow.store.models import CaptchaChallenge

ANSWER_DIGITS = 6
_image = ImageCaptcha(width=220, height=80)
_audio = AudioCaptcha()


class CaptchaBook:
    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._key = hashlib.sha256(f"captcha:{secret_key}".encode()).digest()
        self._ttl = timedelta(seconds=ttl_s)

    def answer_for(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        return str(int.from_bytes(digest[:8], "big") % 10**ANSWER_DIGITS).zfill(ANSWER_DIGITS)

    @staticmethod
    def _hash(answer: str) -> str:
        return hashlib.sha256(answer.encode()).hexdigest()

    def issue(self, session: Session, profile_id: int, now: datetime) -> str:
        token = secrets.token_urlsafe(24)
        session.add(
            CaptchaChallenge(
                token=token,
                profile_id=profile_id,
                answer_hash=self._hash(self.answer_for(token)),
                created_at=now,
                expires_at=now + self._ttl,
            )
        )
        return token

    def _live(self, session: Session, token: str, profile_id: int, now: datetime) -> bool:
        challenge = session.scalars(
            select(CaptchaChallenge).where(CaptchaChallenge.token == token)
        ).first()
        return (
            challenge is not None
            and challenge.profile_id == profile_id
            and challenge.used_at is None
            and challenge.expires_at > now
        )

    def image(self, session: Session, token: str, profile_id: int, now: datetime) -> bytes | None:
        if not token or len(token) > 64 or not self._live(session, token, profile_id, now):
            return None
        return _image.generate(self.answer_for(token)).getvalue()

    def audio(self, session: Session, token: str, profile_id: int, now: datetime) -> bytes | None:
        if not token or len(token) > 64 or not self._live(session, token, profile_id, now):
            return None
        return bytes(_audio.generate(" ".join(self.answer_for(token)).replace(" ", "")))

    def verify(
        self, session: Session, token: str, answer: str, profile_id: int, now: datetime
    ) -> bool:
        """Spend the challenge and say whether the answer was right; a replay is always wrong."""
        if not token or len(token) > 64:
            return False
        # One UPDATE that only succeeds while unused: two concurrent answers cannot both win.
        spent = session.execute(
            update(CaptchaChallenge)
            .where(
                CaptchaChallenge.token == token,
                CaptchaChallenge.profile_id == profile_id,
                CaptchaChallenge.used_at.is_(None),
                CaptchaChallenge.expires_at > now,
            )
            .values(used_at=now)
            .returning(CaptchaChallenge.answer_hash)
        ).first()
        if spent is None:
            return False
        given = "".join(c for c in answer if c.isdigit())[:ANSWER_DIGITS]
        return hmac.compare_digest(spent.answer_hash, self._hash(given))
