"""Signed-in sessions and login attempts: when a session still counts, what a login must show.

A session ends when it is revoked, when it has been idle too long, or when it is simply too old,
however busy. A login is refused from a network that has guessed wrong too often; while an
account is under attack from anywhere, only networks the owner has signed in from before may try,
and only after solving a CAPTCHA, so strangers can slow an owner down but not lock them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


def is_live(
    created_at: datetime,
    last_seen_at: datetime,
    revoked_at: datetime | None,
    now: datetime,
    lifetimes: Lifetimes,
) -> bool:
    return (
        revoked_at is None
        and now - last_seen_at < lifetimes.idle
        and now - created_at < lifetimes.absolute
    )


class LoginGate(Enum):
    OPEN = "open"  # check the password
    CAPTCHA = "captcha"  # a solved CAPTCHA first, then the password
    REFUSED = "refused"  # too many attempts: answer 429 without checking anything


def login_gate(
    *, network_over_limit: bool, account_under_attack: bool, known_network: bool
) -> LoginGate:
    if network_over_limit:
        return LoginGate.REFUSED
    if account_under_attack:
        return LoginGate.CAPTCHA if known_network else LoginGate.REFUSED
    return LoginGate.OPEN


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str) -> str:
    """A short name for a browser's user agent ("Firefox on Linux"), for the sessions list."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"
