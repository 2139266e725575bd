"""Draining: a stopped engine lets the calls in progress end by themselves, then exits.

`callnow engine` runs as a process of its own against real SIPp phones and rtpengine. SIGTERM
arrives while a callback is bridged: the engine stops claiming, keeps the call's lease (the
lease is shorter than the call), and exits only once the visitor hung up. Told twice, or when
the drain time is over, it hangs up both legs with BYE instead: never an `interrupted` request,
always exactly one charge.
"""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import select

from callnow.store.billing_models import ChargeRow
from callnow.store.models import CallRequest, RequestEvent
from tests.e2e import test_engine_crash as crash
from tests.e2e.test_engine_crash import LEASE_S, engine_process, wait_for

# The crash tests' rig: a seeded database, queued requests, a `callnow engine` environment.
rig = crash.rig

pytestmark = pytest.mark.peers
# The visitor's phone (answer_talk_then_bye.xml) talks this long, longer than the lease.
TALK_S = 6
assert TALK_S > LEASE_S


def _charges(sessions) -> list[ChargeRow]:
    with sessions() as session:
        return list(session.scalars(select(ChargeRow)))


def _reason(sessions, request_id: int) -> str:
    with sessions() as session:
        return session.scalars(
            select(RequestEvent.reason)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id.desc())
        ).first()


@pytest.mark.timeout(120)
def test_a_bridged_call_survives_sigterm_until_the_visitor_hangs_up(rig, sipp_peer, tmp_path):
    sessions, queue_request, env_for, state_of, legs_of = rig
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer_talk_then_bye.xml")
    env = {
        **env_for(owner, trunk),
        "CALLNOW_SIP__MAX_CALL_DURATION_S": "60",
        "CALLNOW_ENGINE__DRAIN_S": "60",
    }
    request_id = queue_request("+61290375678")
    log = tmp_path / "engine.log"
    with engine_process(env, log) as engine:
        wait_for(lambda: state_of(request_id) == "connected", 30, "the bridged call", log)
        engine.send_signal(signal.SIGTERM)
        # Told to stop, it still carries the call: past a whole lease, the call is up.
        time.sleep(LEASE_S + 1)
        assert engine.poll() is None, log.read_text()[-3000:]
        assert state_of(request_id) == "connected"
        assert trunk.received("BYE") == []  # nobody hung up on the visitor
        # The visitor hangs up by themselves; then the engine exits, cleanly.
        assert engine.wait(timeout=TALK_S + 30) == 0, log.read_text()[-3000:]
        exited_at = time.time()
    assert state_of(request_id) == "completed"
    legs = {leg.role: leg for leg in legs_of(request_id)}
    assert legs["requester"].disposition == "answered"
    assert legs["requester"].ended_at.timestamp() <= exited_at
    assert legs["requester"].billable_seconds >= TALK_S - 1
    assert [charge.call_leg_id for charge in _charges(sessions)] == [legs["requester"].id]
    assert len(owner.received("BYE")) == 1  # the engine ended the owner's leg after the visitor
    assert "draining" in log.read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["second_sigterm", "drain_time_over"])
def test_a_drain_cut_short_hangs_up_both_legs_and_bills_once(rig, sipp_peer, tmp_path, how):
    sessions, queue_request, env_for, state_of, legs_of = rig
    owner = sipp_peer("answer_info_dtmf_relay.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")  # talks until we hang up
    env = {
        **env_for(owner, trunk),
        "CALLNOW_SIP__MAX_CALL_DURATION_S": "120",
        "CALLNOW_ENGINE__DRAIN_S": "60" if how == "second_sigterm" else "2",
    }
    request_id = queue_request("+61290375678")
    log = tmp_path / "engine.log"
    with engine_process(env, log) as engine:
        wait_for(lambda: state_of(request_id) == "connected", 30, "the bridged call", log)
        engine.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert engine.poll() is None and state_of(request_id) == "connected"
        if how == "second_sigterm":
            engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=20) == 0, log.read_text()[-3000:]
    assert state_of(request_id) == "completed"
    assert _reason(sessions, request_id) == "engine_stopping"
    trunk.wait_for_request("BYE")
    owner.wait_for_request("BYE")
    legs = {leg.role: leg for leg in legs_of(request_id)}
    assert all(leg.ended_at is not None for leg in legs.values())
    assert legs["requester"].answered_at is not None
    assert [charge.call_leg_id for charge in _charges(sessions)] == [legs["requester"].id]
    with sessions() as session:
        states = set(session.scalars(select(CallRequest.state)))
    assert "interrupted" not in states
