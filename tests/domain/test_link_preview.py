"""Which fetches only look at a page (and so must never place a call)."""

import pytest

from callnow.domain.link_preview import is_look_only

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120"
PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36"
)


@pytest.mark.parametrize("agent", [CHROME, PHONE, ""])
def test_a_person_opening_the_link_acts(agent):
    assert not is_look_only("GET", {"user-agent": agent})


def test_head_never_acts():
    assert is_look_only("HEAD", {"user-agent": CHROME})
    assert is_look_only("head", {})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sec-purpose", "prefetch"),
        ("sec-purpose", "prefetch;prerender"),
        ("purpose", "prefetch"),
        ("x-purpose", "preview"),
        ("x-moz", "prefetch"),
    ],
)
def test_an_announced_prefetch_or_preview_only_looks(name, value):
    assert is_look_only("GET", {name: value, "user-agent": CHROME})


@pytest.mark.parametrize(
    "agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0 A",
        "Microsoft Office Excel 2014",
        "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)",
        "Link Preview Bot",
        "SomeNewChatApp-Unfurler/1.0",
    ],
)
def test_scanners_and_self_declared_robots_only_look(agent):
    assert is_look_only("GET", {"user-agent": agent})


def test_an_unrelated_purpose_header_does_not_count():
    assert not is_look_only("GET", {"sec-purpose": "navigate", "user-agent": CHROME})
