"""Booked requests through a real engine process and SIPp phones: dialled at the slot and not
before, exactly once across a SIGKILL of the engine, and refused at dial time when the owner
turned CallNow off after the visitor booked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.request_state import TERMINAL, RequestState
from callnow.store import profiles
from callnow.store.db import transaction
from callnow.store.models import CallRequest
from tests.e2e.test_engine_crash import LEASE_S, engine_process, rig, wait_for
from tests.support.world import queued_request

pytestmark = pytest.mark.peers
__all__ = ["rig"]  # the fixture, shared with the crash tests

# Long enough for the engine process to start and poll a few times before the slot.
LEAD_S = 6


def book(sessions, slot: datetime) -> int:
    with transaction(sessions) as session:
        return queued_request(
            session, "alice", "+61290375678", decision="confirm", scheduled_for=slot
        ).id


def test_a_booked_request_is_dialled_at_its_slot_once_across_a_kill_9(rig, sipp_peer, tmp_path):
    sessions, _queue_request, env_for, state_of, legs_of = rig
    owner = sipp_peer("ring_forever.xml")
    trunk = sipp_peer("answer.xml")
    slot = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    request_id = book(sessions, slot)
    log = tmp_path / "engine.log"
    with engine_process(env_for(owner, trunk), log) as first:
        # Before the slot the engine polls and claims nothing.
        while datetime.now(UTC) < slot - timedelta(seconds=1):
            assert owner.received("INVITE") == [] and legs_of(request_id) == []
            time.sleep(0.1)
        wait_for(lambda: len(owner.received("INVITE")) >= 1, 30, "the owner's INVITE", log)
        assert datetime.now(UTC) >= slot
        first.kill()  # SIGKILL while the owner's phone rings
        first.wait()
    with engine_process(env_for(owner, trunk), log):
        wait_for(
            lambda: RequestState(state_of(request_id)) in TERMINAL,
            LEASE_S + 30,  # the second engine's start-up is slow on a busy machine
            "a terminal state after the crash",
            log,
        )
    assert state_of(request_id) == "interrupted"
    assert len(owner.received("INVITE")) == 1
    assert trunk.received("INVITE") == []
    with sessions() as session:
        legs = legs_of(request_id)
        assert [leg.role for leg in legs] == ["owner"]
        assert legs[0].started_at >= session.get(CallRequest, request_id).scheduled_for


def test_a_booked_request_is_refused_at_dial_time_when_callnow_was_turned_off(
    rig, sipp_peer, tmp_path
):
    sessions, _queue_request, env_for, state_of, legs_of = rig
    owner = sipp_peer("answer_info_dtmf.xml", {"digit": "1"})
    trunk = sipp_peer("answer.xml")
    request_id = book(sessions, datetime.now(UTC) + timedelta(seconds=LEAD_S))
    with transaction(sessions) as session:  # the owner turns CallNow off after the booking
        profiles.by_callnow_id(session, "alice").enabled = False
    log = tmp_path / "engine.log"
    with engine_process(env_for(owner, trunk), log):
        wait_for(
            lambda: RequestState(state_of(request_id)) in TERMINAL,
            LEAD_S + 20,
            "the booking's end at its slot",
            log,
        )
    assert state_of(request_id) == "rejected"
    with sessions() as session:
        assert session.get(CallRequest, request_id).events[-1].reason == "disabled"
    assert owner.received("INVITE") == [] and trunk.received("INVITE") == []
    assert legs_of(request_id) == []
