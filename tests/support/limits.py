"""Abuse limits lifted, for floods and benches where every post must do the whole intake."""

from __future__ import annotations

from callnow.config import AbuseSettings

UNLIMITED = "1000000/minute"
LIFTED = AbuseSettings(
    per_source=UNLIMITED,
    per_network=UNLIMITED,
    per_profile=UNLIMITED,
    per_number=UNLIMITED,
    per_block=UNLIMITED,
    platform=UNLIMITED,
    captcha_auto_on=UNLIMITED,
    spike_captcha=UNLIMITED,
)
