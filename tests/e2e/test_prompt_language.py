"""End to end: an owner whose language is French hears the confirmation prompt in French.

The visitor asks through the web form; SIPp plays the owner's phone (answers, presses 1 by SIP
INFO) and the trunk (answers); rtpengine anchors the media; espeak-ng renders the prompt. The
prompt file the engine played is found in the prompt cache by its text and voice, and compared
with the English prompt of the same request.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, User
from callnow.telephony.prompts import PromptRenderer, wav_duration
from tests.e2e.conftest import submit, wait_until_finished

pytestmark = pytest.mark.peers

# The request below: Mary, 02 9037 5678 (Sydney, like Alice's extension: a local call, 12 cents).
FRENCH = (
    "Demande de rappel : Mary, au 0 2, 90 37, 56 78, un appel local, 12 centimes. "
    "Appuyez sur 1 pour rappeler maintenant, sur 2 pour refuser."
)
ENGLISH = (
    "Call request from Mary, 0 2, 9 0 3 7, 5 6 7 8, a local call, 12 cents. "
    "Press 1 to call back now, 2 to decline."
)


def test_a_french_owner_hears_the_prompt_in_french_and_pressing_1_calls_back(
    callback_service, tmp_path
):
    settings, sessions, _owner, trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}
    )
    with transaction(sessions) as session:
        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        alice.language = "fr"

    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client, "02 9037 5678")
        with sessions() as session:
            request = session.scalars(select(CallRequest)).one()
            request_id, number = request.id, request.number_e164
        # Pressing 1 works as in English: the visitor is called back and the call is bridged.
        assert wait_until_finished(sessions, request_id) == "completed"

    with sessions() as session:
        legs = {leg.role: leg.disposition for leg in session.scalars(select(CallLeg))}
    assert legs == {"owner": "answered", "requester": "answered"}
    [trunk_invite] = trunk.received("INVITE")
    assert trunk_invite.request_uri.startswith(f"sip:{number}@")

    # The digits spoken are the request's number, in French pairs ("quatre-vingt-dix, trente-sept").
    assert number == "+61290375678"
    spoken = re.search(r"au (.*), un appel", FRENCH)
    assert spoken is not None and re.sub(r"\D", "", spoken.group(1)) == "0290375678"

    # The engine rendered exactly this French sentence with espeak-ng's French voice (the
    # owner's phone answered PCMU), and never the English one.
    cache = PromptRenderer(settings.data_dir / "prompts")
    played = cache.path_for(FRENCH, "fr", None, "PCMU")
    assert played.is_file(), sorted(p.name for p in cache.cache_dir.iterdir())
    assert not cache.path_for(ENGLISH, "en", None, "PCMU").exists()

    # Rendered again apart from the engine: the same length of audio (sox's dither makes the
    # samples differ a little from one rendering to the next).
    fresh = PromptRenderer(tmp_path / "fresh")
    french = asyncio.run(fresh.render(FRENCH, language="fr"))
    english = asyncio.run(fresh.render(ENGLISH, language="en"))
    assert wav_duration(played) == pytest.approx(french.duration_s, abs=0.001)

    # A plausible length for the French text at the renderer's pace, and not the English one's.
    duration = wav_duration(played)
    words = len(FRENCH.split())
    assert 0.5 * words * 60 / 150 < duration < 2.0 * words * 60 / 150, (duration, words)
    # (12.35 s against 12.10 s with espeak-ng 1.51: the same length only by chance.)
    assert abs(duration - english.duration_s) > 0.1, (duration, english.duration_s)
