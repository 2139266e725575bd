"""Trunk registration against a SIPp registrar: 401 challenge, refresh, registrar restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from callnow.telephony.sip import Credentials, SipStack
from callnow.telephony.sip.register import RegistrationSpec, RegistrationState
from tests.peers.sipp import HOST
from tests.telephony.test_sip_auth import expected_digest

pytestmark = pytest.mark.peers

KEYS = {"auth_user": "callnow", "auth_pass": "s3cret-Pa55", "expires": "2"}


def spec_for(port: int, **overrides: float) -> RegistrationSpec:
    values: dict = dict(
        name="main",
        registrar=(HOST, port),
        user="61290001234",
        domain="trunk.test",
        credentials=Credentials("callnow", "s3cret-Pa55"),
        expires_s=60,
        timeout_s=1.0,
        retry_min_s=0.5,
        retry_max_s=1.0,
    )
    values.update(overrides)
    return RegistrationSpec(**values)


async def wait_for(stack: SipStack, registered: bool, timeout: float = 8.0) -> RegistrationState:
    deadline = time.monotonic() + timeout
    while True:
        state = stack.registrations[0]
        if state.registered is registered:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"registration still {state} after {timeout}s")
        await asyncio.sleep(0.05)


async def test_register_answers_401_and_refreshes_before_expiry(
    sip_stack: SipStack, sipp_peer
) -> None:
    registrar = sipp_peer("registrar_401.xml", KEYS)
    await sip_stack.register(spec_for(registrar.port))

    state = await wait_for(sip_stack, True)
    assert state.last_error is None and state.expires_at is not None
    # The registrar granted 2 s: the refresh comes before the binding lapses (at 80 %).
    assert registrar.wait(5.0) == 0, registrar.diagnostics()
    first, second, refresh = registrar.received("REGISTER")
    assert first.header("Authorization") is None
    assert first.header("Expires") == "60"
    assert "sip:61290001234@trunk.test" in (first.header("To") or "")
    sent, expected = expected_digest(
        second.header("Authorization") or "", "REGISTER", "s3cret-Pa55"
    )
    assert sent == expected
    assert refresh.cseq[0] > second.cseq[0]
    assert refresh.header("Call-ID") == first.header("Call-ID")
    gap = refresh.logged_at - second.logged_at
    assert 1.0 <= gap < 2.0, gap
    assert sip_stack.registrations[0].registered


async def test_registrar_restart_is_recovered_with_a_new_register(
    sip_stack: SipStack, sipp_peer
) -> None:
    registrar = sipp_peer("registrar_401.xml", KEYS)
    await sip_stack.register(spec_for(registrar.port))
    await wait_for(sip_stack, True)
    assert registrar.wait(5.0) == 0, registrar.diagnostics()

    # The registrar is gone: the next refresh goes unanswered and health says so.
    state = await wait_for(sip_stack, False)
    assert state.last_error is not None and "no answer" in state.last_error
    assert "s3cret" not in repr(state)

    again = sipp_peer("registrar_401.xml", KEYS, port=registrar.port)
    state = await wait_for(sip_stack, True)
    assert state.last_error is None
    assert len(again.received("REGISTER")) >= 2


async def test_wrong_password_is_reported_not_looped(sip_stack: SipStack, sipp_peer) -> None:
    registrar = sipp_peer("registrar_401.xml", KEYS)
    await sip_stack.register(
        spec_for(registrar.port, credentials=Credentials("callnow", "wrong"))  # type: ignore[arg-type]
    )
    assert registrar.wait(5.0) == 97
    deadline = time.monotonic() + 5
    while sip_stack.registrations[0].last_error is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sip_stack.registrations[0].last_error == "403 Forbidden"
    assert not sip_stack.registrations[0].registered
