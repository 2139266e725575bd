"""Digest authentication towards the PSTN trunk (407 Proxy-Authenticate or 401, qop=auth).

A digest is only proven right by recomputing it: for 401 SIPp does that itself (`verifyauth`),
for 407 (which SIPp 3.6 cannot verify) the test recomputes it from what the trunk received.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from callnow.telephony.sip import (
    Answered,
    CallerId,
    Credentials,
    Failed,
    FailureCause,
    SipStack,
)
from tests.peers.sipp import OFFER_SDP

pytestmark = pytest.mark.peers

EXTENSION_NUMBER = CallerId("", "+61290001234")  # the owner's external number
TRUNK_KEYS = {"auth_user": "callnow", "auth_pass": "s3cret-Pa55"}
EVENT_TIMEOUT = 5.0


def expected_digest(auth_header: str, method: str, password: str) -> tuple[str, str]:
    """(response sent, response expected) for an RFC 2617 qop=auth MD5 digest header."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', auth_header))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{fields['username']}:{fields['realm']}:{password}")
    ha2 = md5(f"{method}:{fields['uri']}")
    nonce, nc, cnonce, qop = (fields[k] for k in ("nonce", "nc", "cnonce", "qop"))
    expected = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return fields["response"], expected


async def test_407_challenge_is_answered_with_a_correct_digest(
    sip_stack: SipStack, sipp_peer
) -> None:
    trunk = sipp_peer("trunk_auth.xml")
    leg = await sip_stack.dial(
        trunk.uri("+61411222333"),
        caller=EXTENSION_NUMBER,
        asserted_identity=EXTENSION_NUMBER,
        sdp=OFFER_SDP,
        ring_timeout=2.0,
        credentials=Credentials("callnow", "s3cret-Pa55"),
    )

    event = await leg.next_event(EVENT_TIMEOUT)
    while not isinstance(event, Answered):
        assert not isinstance(event, Failed), event
        event = await leg.next_event(EVENT_TIMEOUT)
    await leg.hangup()

    assert trunk.wait() == 0, trunk.diagnostics()
    first, second = trunk.received("INVITE")
    assert first.header("Proxy-Authorization") is None
    auth = second.header("Proxy-Authorization") or ""
    assert auth.startswith("Digest ") and 'username="callnow"' in auth and "qop=auth" in auth
    sent, expected = expected_digest(auth, "INVITE", "s3cret-Pa55")
    assert sent == expected
    # The 407 was ACKed before the authenticated INVITE went out.
    assert [m.method for m in trunk.received()][:3] == ["INVITE", "ACK", "INVITE"]
    assert second.cseq[0] > first.cseq[0]
    # The trunk sees the extension's external number as caller ID, also asserted.
    for invite in (first, second):
        assert "<sip:+61290001234@" in (invite.header("From") or "")
        assert "<sip:+61290001234@" in (invite.header("P-Asserted-Identity") or "")
        assert invite.request_uri is not None and invite.request_uri.startswith("sip:+61411222333@")


async def test_401_challenge_digest_is_verified_by_the_peer(sip_stack: SipStack, sipp_peer) -> None:
    trunk = sipp_peer("trunk_auth_401.xml", TRUNK_KEYS)
    leg = await sip_stack.dial(
        trunk.uri("+61411222333"),
        caller=EXTENSION_NUMBER,
        sdp=OFFER_SDP,
        ring_timeout=2.0,
        credentials=Credentials("callnow", "s3cret-Pa55"),
    )

    event = await leg.next_event(EVENT_TIMEOUT)
    while not isinstance(event, Answered):
        assert not isinstance(event, Failed), event
        event = await leg.next_event(EVENT_TIMEOUT)
    await leg.hangup()

    assert trunk.wait() == 0, trunk.diagnostics()  # 0: SIPp's verifyauth accepted it
    assert trunk.received("INVITE")[1].header("Authorization").startswith("Digest ")


async def test_wrong_password_fails_the_leg(sip_stack: SipStack, sipp_peer) -> None:
    trunk = sipp_peer("trunk_auth_401.xml", TRUNK_KEYS)
    leg = await sip_stack.dial(
        trunk.uri("+61411222333"),
        caller=EXTENSION_NUMBER,
        sdp=OFFER_SDP,
        ring_timeout=2.0,
        credentials=Credentials("callnow", "wrong"),
    )

    record = await leg.wait_done(EVENT_TIMEOUT)

    assert (record.final_code, record.failure_cause) == (403, FailureCause.AUTH_REJECTED)
    assert trunk.wait() == 97  # the trunk's "digest did not verify" exit


async def test_credentials_challenged_again_fail_once_without_a_retry_loop(
    sip_stack: SipStack, sipp_peer
) -> None:
    trunk = sipp_peer("trunk_auth_reject.xml")
    leg = await sip_stack.dial(
        trunk.uri("+61411222333"),
        caller=EXTENSION_NUMBER,
        sdp=OFFER_SDP,
        ring_timeout=2.0,
        credentials=Credentials("callnow", "s3cret-Pa55"),
    )

    events = [event async for event in leg]

    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.cause) == (407, FailureCause.AUTH_REJECTED)
    # The trunk stays up a second after its second challenge; a third INVITE would fail it.
    assert trunk.wait() == 0, trunk.diagnostics()
    invites = trunk.received("INVITE")
    assert len({invite.cseq for invite in invites}) == 2


async def test_challenge_without_credentials_fails_without_resending(
    sip_stack: SipStack, sipp_peer
) -> None:
    trunk = sipp_peer("trunk_auth_reject.xml")
    leg = await sip_stack.dial(
        trunk.uri("+61411222333"), caller=EXTENSION_NUMBER, sdp=OFFER_SDP, ring_timeout=2.0
    )

    record = await leg.wait_done(EVENT_TIMEOUT)

    assert record.final_code == 407
    trunk.stop()
    assert len(trunk.received("INVITE")) == 1
