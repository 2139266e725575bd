"""The `[trunk]` settings as the carrier sees them on the wire (real SIPp, real rtpengine):
From user, domain and display name, the caller-ID format, P-Asserted-Identity on or off,
Privacy, an outbound proxy, and the Allow and Supported headers of our INVITEs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callnow.config import RtpengineSettings
from tests.engine.live_helpers import (
    OWNER_EXTERNAL,
    VISITOR_NUMBER,
    facts,
    live_rig,
    wait_for_request,
)
from tests.peers.sipp import SipMessage

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def name_addr(value: str | None) -> tuple[str, str, str]:
    """(display name, user, host) of a From / P-Asserted-Identity value."""
    assert value is not None
    found = re.match(r'\s*(?:"([^"]*)"\s*)?<sip:([^@>]+)@([^:;>]+)', value)
    assert found, value
    return found.group(1) or "", found.group(2), found.group(3)


async def trunk_invite_with(
    trunk_settings: dict[str, object],
    sipp_peer,
    rtpengine_settings: RtpengineSettings,
    prompt_cache: Path,
    tmp_path: Path,
    trunk_uri_template: str | None = None,
) -> tuple[SipMessage, SipMessage]:
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    settings = {
        key: (str(value).replace("TRUNK_PORT", str(trunk.port)))
        if key == "outbound_proxy"
        else value
        for key, value in trunk_settings.items()
    }
    async with live_rig(
        owner,
        trunk,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        trunk_uri_template=trunk_uri_template,
        trunk_settings=settings,
    ) as rig:
        await rig.start(facts())
        invite = await wait_for_request(trunk, "INVITE")
        owner_invite = await wait_for_request(owner, "INVITE")
    return invite, owner_invite


async def test_from_display_national_caller_id_privacy_and_outbound_proxy(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    invite, owner_invite = await trunk_invite_with(
        {
            "display_name": "Acme Sales",
            "from_domain": "trunk.example.net",
            "caller_id_format": "national",
            "privacy": "id",
            # The carrier's host does not resolve: only the proxy is ever sent to.
            "outbound_proxy": "127.0.0.1:TRUNK_PORT",
            "supported": ["path"],
        },
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
        trunk_uri_template="sip:{e164}@carrier.invalid",
    )

    assert invite.request_uri == f"sip:{VISITOR_NUMBER}@carrier.invalid"
    assert name_addr(invite.header("From")) == ("Acme Sales", "0299990000", "trunk.example.net")
    assert name_addr(invite.header("P-Asserted-Identity")) == (
        "Acme Sales",
        "0299990000",
        "trunk.example.net",
    )
    assert invite.header("Privacy") == "id"
    assert invite.header("Supported") == "path"
    for sent in (invite, owner_invite):
        allowed = {m.strip() for m in (sent.header("Allow") or "").split(",")}
        assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"} <= allowed


async def test_account_in_from_caller_id_without_plus_and_no_asserted_identity(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    invite, _ = await trunk_invite_with(
        {"from_user": "5550100", "caller_id_format": "e164_no_plus", "p_asserted_identity": False},
        sipp_peer,
        rtpengine_settings,
        prompt_cache,
        tmp_path,
    )

    assert name_addr(invite.header("From"))[:2] == ("", "5550100")
    assert invite.header("P-Asserted-Identity") is None
    assert invite.header("Privacy") is None
    assert invite.header("Supported") is not None  # empty: nothing claimed we do not do


async def test_defaults_show_the_external_number_in_e164(
    sipp_peer, rtpengine_settings: RtpengineSettings, prompt_cache: Path, tmp_path: Path
) -> None:
    invite, _ = await trunk_invite_with({}, sipp_peer, rtpengine_settings, prompt_cache, tmp_path)

    assert name_addr(invite.header("From"))[1] == OWNER_EXTERNAL
    assert name_addr(invite.header("P-Asserted-Identity"))[1] == OWNER_EXTERNAL
