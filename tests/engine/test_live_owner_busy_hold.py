"""An owner whose phone answered busy is not rung again for `engine.owner_busy_hold_s`.

The whole engine as `callnow engine` runs it (`EngineRuntime`: dispatcher, store recorder,
record stream, live telephony with its rtpengine) on SQLite and PostgreSQL, and a real SIPp
phone for the owner that answers every INVITE with 486 Busy Here. Two requests wait for the
same owner: the first call meets busy; the second stays queued through the hold and is dialled
once it has passed (found by the dispatcher's poll). With no hold it is dialled at once, as the
first call's end makes room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callnow.bootstrap import seed_default_deck
from callnow.config import EngineSettings, RtpengineSettings
from callnow.domain.request_state import TERMINAL, RequestState
from callnow.engine.runtime import EngineRuntime
from callnow.store import profiles
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallRequest
from tests.engine.live_helpers import live_settings, template_for
from tests.peers.sipp import SipMessage, SippPeer
from tests.support.world import queued_request, seed_alice

pytestmark = pytest.mark.peers

HOLD_S = 2.0
# SIPp stamps its log from a clock it reads once per loop: allow it that much.
LOG_SLACK_S = 0.1


def sent_busy(owner: SippPeer) -> list[SipMessage]:
    return [m for m in owner.sent() if m.start_line.startswith("SIP/2.0 486")]


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    db = make_engine(db_url)
    yield make_session_factory(db)
    db.dispose()


async def run_engine_until_both_end(
    sessions: sessionmaker[Session],
    owner: SippPeer,
    trunk: SippPeer,
    rtpengine: RtpengineSettings,
    tmp_path: Path,
    engine: EngineSettings,
) -> list[int]:
    """Queue two requests for Alice, run the engine until both have ended; their ids."""
    with transaction(sessions) as session:
        seed_alice(session)
        seed_default_deck(session)
        ids = [queued_request(session, "alice", f"+6129037567{n}").id for n in range(2)]
    settings = live_settings(
        template_for(owner, "internal"),
        template_for(trunk, "e164"),
        rtpengine,
        tmp_path,
        more={"database_url": str(sessions.kw["bind"].url), "engine": engine},
    )
    runtime = await EngineRuntime.start(settings, sessions)
    try:
        async with asyncio.timeout(20):
            while True:
                with sessions() as session:
                    states = session.scalars(
                        select(CallRequest.state).where(CallRequest.id.in_(ids))
                    ).all()
                if all(RequestState(state) in TERMINAL for state in states):
                    break
                await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    return ids


async def test_the_second_request_waits_out_the_hold_then_rings(
    sessions, sipp_peer, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("busy.xml", {}, "-m", "2")
    trunk = sipp_peer("answer.xml")
    engine = EngineSettings(poll_interval_s=0.2, owner_busy_hold_s=HOLD_S)

    ids = await run_engine_until_both_end(
        sessions, owner, trunk, rtpengine_settings, tmp_path, engine
    )

    invites, busy = owner.received("INVITE"), sent_busy(owner)
    assert len(invites) == 2 and len(busy) == 2, owner.diagnostics()
    waited = invites[1].logged_at - busy[0].logged_at
    # Not within the hold (it counts from the engine's hearing the 486, after SIPp sent it),
    # and soon after it: the poll found it.
    assert HOLD_S - LOG_SLACK_S <= waited < HOLD_S + 5, waited
    with sessions() as session:
        ended = [session.get(CallRequest, request_id) for request_id in ids]
        assert [(r.state, r.events[-1].reason) for r in ended] == [
            ("owner_unreachable", "owner_busy")
        ] * 2
        # The second busy holds the owner again, from its own end.
        held_until = profiles.by_callnow_id(session, "alice").extension.busy_until
        hold_from_end = held_until - ended[1].events[-1].at
        assert abs(hold_from_end - timedelta(seconds=HOLD_S)) < timedelta(seconds=0.5)
        assert ended[0].events[-1].at + timedelta(seconds=HOLD_S) <= ended[1].events[-2].at


async def test_without_a_hold_the_second_request_rings_as_soon_as_the_first_ends(
    sessions, sipp_peer, rtpengine_settings: RtpengineSettings, tmp_path: Path
) -> None:
    owner = sipp_peer("busy.xml", {}, "-m", "2")
    trunk = sipp_peer("answer.xml")
    # Polling far too slowly to matter: the first call's end is what makes the engine look.
    engine = EngineSettings(poll_interval_s=30, owner_busy_hold_s=0)

    await run_engine_until_both_end(sessions, owner, trunk, rtpengine_settings, tmp_path, engine)

    invites, busy = owner.received("INVITE"), sent_busy(owner)
    assert len(invites) == 2 and len(busy) == 2, owner.diagnostics()
    assert invites[1].logged_at - busy[0].logged_at < HOLD_S / 2
    with sessions() as session:
        assert profiles.by_callnow_id(session, "alice").extension.busy_until is None
