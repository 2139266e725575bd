"""When a session still counts, what a login must show first, and how a device is named."""

from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.sign_in import Lifetimes, LoginGate, device_label, is_live, login_gate

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
LIFE = Lifetimes(idle=timedelta(hours=2), absolute=timedelta(hours=12))


def test_a_session_lives_until_idle_absolute_or_revoked():
    assert is_live(NOW - timedelta(hours=1), NOW - timedelta(minutes=5), None, NOW, LIFE)
    assert not is_live(NOW - timedelta(hours=3), NOW - timedelta(hours=2), None, NOW, LIFE)
    assert not is_live(NOW - timedelta(hours=12), NOW - timedelta(seconds=1), None, NOW, LIFE)
    assert not is_live(NOW - timedelta(hours=1), NOW, NOW - timedelta(seconds=1), NOW, LIFE)


@pytest.mark.parametrize(
    ("network_over", "attacked", "known", "gate"),
    [
        (False, False, False, LoginGate.OPEN),
        (False, False, True, LoginGate.OPEN),
        (False, True, True, LoginGate.CAPTCHA),
        (False, True, False, LoginGate.REFUSED),
        (True, False, True, LoginGate.REFUSED),
        (True, True, True, LoginGate.REFUSED),
    ],
)
def test_the_login_gate(network_over, attacked, known, gate):
    assert (
        login_gate(
            network_over_limit=network_over, account_under_attack=attacked, known_network=known
        )
        is gate
    )


def test_devices_are_named_briefly():
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    assert device_label(firefox) == "Firefox on Linux"
    chrome_android = (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0 Mobile Safari/537.36"
    )
    assert device_label(chrome_android) == "Chrome on Android"
    assert device_label("") == "Unknown browser"
    assert device_label("curl/8.5") == "Unknown browser"
