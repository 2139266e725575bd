"""The rig for live callback tests: real SIPp phones, a real rtpengine, the engine in-process.

    async with live_rig(owner_peer, trunk_peer, rtpengine_settings, cache) as rig:
        handle = await rig.start(facts())
        invite = await wait_for_request(owner_peer, "INVITE")
        ...
        outcome = await rig.outcome(handle)

SIPp peers are started by the test first (their ports go into the URI templates); the rig then
starts `LiveTelephony` (spawning a private rtpengine on the reserved ports) and a
`CallbackEngine` writing to the in-memory `FakeRecorder`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from callnow.config import RtpengineSettings, Settings, SipSettings, TrunkSettings
from callnow.domain.calls import CallRecord, LegRole
from callnow.domain.flow import AcceptanceMode, FlowLimits, Outcome, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.live import LiveTelephony
from callnow.engine.runner import CallbackEngine, CallbackHandle
from tests.engine.fakes import FakeRecorder
from tests.peers.sipp import SipMessage, SippPeer
from tests.support.ports import free_port

VISITOR_NUMBER = "+61290375678"
VISITOR_NAME = "Mary Jones"
OWNER_INTERNAL = "1001"
OWNER_EXTERNAL = "+61299990000"
TRUNK_USER, TRUNK_PASSWORD = "callnow", "s3cret"

# Short timers so a whole file of real calls stays well under two minutes.
TEST_LIMITS = FlowLimits(
    owner_ring_s=1.5,
    visitor_ring_s=1.5,
    digit_wait_s=4,
    max_call_duration_s=20,
)
# For calls that nobody hangs up: the maximum call duration ends them.
SHORT_CALLS = replace(TEST_LIMITS, max_call_duration_s=2)
# Limits for steps that wait on the peers (SIPp, rtpengine); never a speed assertion.
STEP_TIMEOUT_S = 10.0


def facts(acceptance: AcceptanceMode = AcceptanceMode.CONFIRM, ref: str = "req-1") -> RequestFacts:
    return RequestFacts(
        request_ref=ref,
        visitor_e164=VISITOR_NUMBER,
        owner_internal_number=OWNER_INTERNAL,
        owner_external_e164=OWNER_EXTERNAL,
        acceptance=acceptance,
        caller_name=VISITOR_NAME,
    )


@dataclass
class LiveRig:
    telephony: LiveTelephony
    engine: CallbackEngine
    recorder: FakeRecorder

    async def start(self, request: RequestFacts) -> CallbackHandle:
        return await self.engine.start_callback(request)

    async def outcome(self, handle: CallbackHandle, timeout: float = 20.0) -> Outcome:
        async with asyncio.timeout(timeout):
            return await handle.outcome

    async def wait_for_state(self, state: RequestState, timeout: float = STEP_TIMEOUT_S) -> None:
        async with asyncio.timeout(timeout):
            while state not in [s for s, _ in self.recorder.states]:
                await asyncio.sleep(0.02)

    def record(self, role: LegRole) -> CallRecord:
        return self.recorder.record_of(role)


def template_for(peer: SippPeer, placeholder: str) -> str:
    """A URI template that reaches `peer` directly."""
    return f"sip:{{{placeholder}}}@127.0.0.1:{peer.port}"


def live_settings(
    owner_uri_template: str,
    trunk_uri_template: str,
    rtpengine: RtpengineSettings,
    data_dir: Path,
    trunk: dict[str, Any] | None = None,
    more: dict[str, Any] | None = None,
    sip: dict[str, Any] | None = None,
) -> Settings:
    return Settings(
        **(more or {}),
        data_dir=data_dir,
        demo_data=False,
        sip=SipSettings(
            listen_host="127.0.0.1",
            listen_port=free_port(),
            owner_uri_template=owner_uri_template,
            **(sip or {}),
        ),
        trunk=TrunkSettings(
            uri_template=trunk_uri_template,
            username=TRUNK_USER,
            password=TRUNK_PASSWORD,
            **(trunk or {}),
        ),
        # spawn: the telephony starts and stops its own rtpengine on the reserved ports
        rtpengine=rtpengine.model_copy(update={"mode": "spawn"}),
    )


@asynccontextmanager
async def live_rig(
    owner: SippPeer,
    trunk: SippPeer,
    rtpengine: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
    limits: FlowLimits = TEST_LIMITS,
    *,
    owner_uri_template: str | None = None,
    trunk_uri_template: str | None = None,
    trunk_settings: dict[str, Any] | None = None,
    more_settings: dict[str, Any] | None = None,
    sip_settings: dict[str, Any] | None = None,
    **telephony_options: Any,
) -> AsyncIterator[LiveRig]:
    """Templates default to the SIPp peers themselves; pass them to put a proxy between.
    `trunk_settings` are more `[trunk]` settings, `sip_settings` more `[sip]` ones,
    `more_settings` other top-level settings (`trunks`); `telephony_options` go to `LiveTelephony`
    (outbound_proxy, trunk_from_domain, ...)."""
    settings = live_settings(
        owner_uri_template or template_for(owner, "internal"),
        trunk_uri_template or template_for(trunk, "e164"),
        rtpengine,
        tmp_path,
        trunk_settings,
        more_settings,
        sip_settings,
    )
    telephony = await LiveTelephony.start(
        settings,
        prompt_cache_dir=prompt_cache,
        owner_ring_timeout_s=limits.owner_ring_s + 5,
        visitor_ring_timeout_s=limits.visitor_ring_s + 5,
        **telephony_options,
    )
    recorder = FakeRecorder()
    engine = CallbackEngine(telephony, recorder, limits=limits)
    try:
        yield LiveRig(telephony, engine, recorder)
    finally:
        await engine.shutdown("test_over")
        await telephony.stop()


# -- what the peers saw ----------------------------------------------------------------------


async def wait_for_request(
    peer: SippPeer, method: str, timeout: float = STEP_TIMEOUT_S
) -> SipMessage:
    """Like `SippPeer.wait_for_request`, without blocking the event loop the engine runs on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = peer.received(method)
        if found:
            return found[0]
        if loop.time() > deadline:
            pytest.fail(f"SIPp {peer.scenario.name} received no {method} within {timeout}s")
        await asyncio.sleep(0.02)


async def wait_for_exit(peer: SippPeer, timeout: float = STEP_TIMEOUT_S) -> int:
    """SIPp's exit code once its scenario ended (0 = it ran to the end), without blocking."""
    return await asyncio.to_thread(peer.wait, timeout)


def methods_received(peer: SippPeer) -> list[str]:
    return [m.method for m in peer.received() if m.method]


def media_address(sdp: str) -> tuple[str, int]:
    """(c= address, first m=audio port) of an SDP body."""
    host = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
    port = re.search(r"^m=audio (\d+) ", sdp, re.M)
    assert host and port, sdp
    return host.group(1), int(port.group(1))


def uri_user(header: str | None) -> str:
    """The user part of the URI in a From/To/P-Asserted-Identity value."""
    assert header is not None
    found = re.search(r"<sips?:([^@>]+)@", header)
    assert found, header
    return found.group(1)


def digest_response(authorization: str, method: str, password: str) -> tuple[str, str]:
    """(response sent, response expected) for a Digest Authorization/Proxy-Authorization
    value with qop=auth (RFC 2617), so a test proves the credentials, not only the header."""
    params = dict(
        (key, value.strip('"'))
        for key, value in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', authorization)
    )

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    expected = md5(
        f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
    )
    return params["response"], expected
