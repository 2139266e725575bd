"""Form tokens: good for their own purpose and for two hours, checked once per token and kept,
and still refused once they expire, also when kept."""

from __future__ import annotations

import time

import pytest

from callnow.web import forms
from callnow.web.forms import FORM_TOKEN_MAX_AGE_S, FormTokens

KEY = "test-" + "k" * 40


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(forms, "time", clock)
    return clock


def test_a_token_is_good_for_its_purpose_only() -> None:
    tokens = FormTokens(KEY)
    token = tokens.issue("public:1")
    assert tokens.valid(token, "public:1")
    assert not tokens.valid(token, "public:2")
    assert not FormTokens("other-" + "k" * 40).valid(token, "public:1")
    assert not tokens.valid(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "public:1")
    assert not tokens.valid("", "public:1") and not tokens.valid(None, "public:1")
    assert not tokens.valid(token + "x" * 300, "public:1")


def test_a_kept_token_still_expires(clock: _Clock) -> None:
    tokens = FormTokens(KEY)
    token = tokens.issue("public:1")
    assert tokens.valid(token, "public:1")  # checked, and kept
    clock.now += FORM_TOKEN_MAX_AGE_S - 1
    assert FormTokens(KEY).valid(token, "public:1")
    clock.now += 2
    assert not FormTokens(KEY).valid(token, "public:1")


def test_a_token_from_the_future_is_refused(clock: _Clock) -> None:
    token = FormTokens(KEY).issue("public:1")
    clock.now -= 60  # this clock was set back: the token says it was signed a minute from now
    assert not FormTokens(KEY).valid(token, "public:1")


def test_each_token_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = FormTokens(KEY)
    token = tokens.issue("public:7")
    checks: list[str] = []
    signer = type(tokens._signer)
    loads = signer.loads

    def counted(self: object, value: str, **kwargs: object) -> object:
        checks.append(value)
        return loads(self, value, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(signer, "loads", counted)
    for _ in range(3):
        assert FormTokens(KEY).valid(token, "public:7")
    assert checks == [token]
