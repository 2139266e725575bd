"""Booked requests in the dispatcher, on SQLite and PostgreSQL, with a test clock: not claimed
before their slot, claimed and started at it, once; and refused at dial time when the owner's
page no longer takes them (turned off, suspended, outside the hours now, a reject rule) or the
slot is long past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callnow.bootstrap import seed_default_deck
from callnow.config import EngineSettings
from callnow.domain.availability import Window
from callnow.domain.request_state import RequestState
from callnow.domain.scheduling import DIAL_GRACE
from callnow.engine.dispatcher import Dispatcher
from callnow.store import profiles, queue
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, RuleRow
from callnow.store.recorder import request_ref
from tests.engine.test_dispatcher import POLL_S, StartsNothing, parked, running, watch_wake
from tests.support.world import queued_request

SLOT = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)  # a Monday evening in UTC
ALL_WEEK = [Window(day, 0, 0) for day in range(7)]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def booked_world(world):
    with transaction(world.sessions) as session:
        seed_default_deck(session)
        profile = profiles.by_callnow_id(session, "alice")
        profiles.replace_windows(session, profile, ALL_WEEK)
    clock = Clock(SLOT - timedelta(hours=5))
    engine = StartsNothing()
    settings = world.settings.model_copy(update={"engine": EngineSettings(poll_interval_s=POLL_S)})
    dispatcher = Dispatcher(world.sessions, engine, settings, clock=clock)
    return world, dispatcher, engine, clock


def book(world, number: str = "+61290375678", slot: datetime = SLOT) -> int:
    with transaction(world.sessions) as session:
        request = queued_request(
            session, "alice", number, now=slot - timedelta(hours=6), scheduled_for=slot
        )
        return request.id


def stored(world, request_id: int) -> CallRequest:
    with world.sessions() as session:
        request = session.get(CallRequest, request_id)
        request.events  # noqa: B018  # loaded before the session closes
        return request


def legs(world, request_id: int) -> int:
    with world.sessions() as session:
        return session.query(CallLeg).filter(CallLeg.request_id == request_id).count()


def test_a_booked_request_is_claimed_at_its_slot_not_before_and_only_once(booked_world):
    world, dispatcher, _engine, clock = booked_world
    request_id = book(world)

    clock.now = SLOT - timedelta(seconds=1)
    assert dispatcher._claim(10).works == []
    assert stored(world, request_id).claimed_by is None

    clock.now = SLOT
    [work] = dispatcher._claim(10).works
    assert work.request_id == request_id
    assert legs(world, request_id) == 1  # the owner's row, written with the claim

    # Claimed with a lease and a leg row: no claim takes it again, even once the lease ran out.
    assert dispatcher._claim(10).works == []
    clock.now = SLOT + timedelta(minutes=10)
    assert dispatcher._claim(10).works == []
    with transaction(world.sessions) as session:
        assert queue.interrupt_abandoned(session, clock.now) == [request_id]
    assert stored(world, request_id).state == RequestState.INTERRUPTED.value


async def test_the_running_engine_dials_a_booked_request_when_its_time_comes(booked_world):
    world, dispatcher, engine, clock = booked_world
    request_id = book(world)
    wake = watch_wake(dispatcher)

    async with running(dispatcher):
        await parked(wake)
        assert engine.started == []  # five hours early: nothing
        clock.now = SLOT
        dispatcher.wake()  # as the poll would, POLL_S later
        await engine.wait_for_starts(1)

    assert engine.started == [request_ref(request_id)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"enabled": False}, "disabled"),
        ({"do_not_allow": True}, "not_accepting"),
        ({"suspended_at": SLOT - timedelta(hours=1)}, "disabled"),
        ({"paused_until": SLOT + timedelta(hours=1)}, "paused"),
        ({"windows": [Window(0, 9 * 60, 17 * 60)]}, "outside_hours"),
        ({"rule": "reject"}, "rule"),
    ],
)
def test_a_booked_request_is_refused_at_dial_time_when_the_page_no_longer_takes_it(
    booked_world, change, reason
):
    world, dispatcher, _engine, clock = booked_world
    request_id = book(world)
    with transaction(world.sessions) as session:
        profile = profiles.by_callnow_id(session, "alice")
        if "windows" in change:
            profiles.replace_windows(session, profile, change["windows"])
        elif "rule" in change:
            profile.rules.append(
                RuleRow(position=0, action="reject", number_match="prefix", number_value="6129037")
            )
        else:
            for key, value in change.items():
                setattr(profile, key, value)
    clock.now = SLOT + timedelta(seconds=30)

    assert dispatcher._claim(10).works == []

    request = stored(world, request_id)
    assert request.state == RequestState.REJECTED.value
    assert request.events[-1].reason == reason
    assert request.lease_expires_at is None
    assert legs(world, request_id) == 0  # nothing was dialled


def test_a_booked_request_found_long_after_its_slot_is_not_dialled(booked_world):
    world, dispatcher, _engine, clock = booked_world
    request_id = book(world)
    clock.now = SLOT + DIAL_GRACE + timedelta(minutes=1)  # the engines were down meanwhile

    assert dispatcher._claim(10).works == []

    request = stored(world, request_id)
    assert request.state == RequestState.REJECTED.value
    assert request.events[-1].reason == "the booked time has passed"


def test_a_booked_request_waits_behind_no_one(booked_world):
    """A later booking does not hold up a request for now, and the queue's depth leaves out
    bookings whose time has not come."""
    world, dispatcher, _engine, clock = booked_world
    book(world)
    with transaction(world.sessions) as session:
        now_request = queued_request(session, "alice", "+61290375679", now=clock.now).id
        assert queue.depth(session, clock.now)[0] == 1

    [work] = dispatcher._claim(10).works
    assert work.request_id == now_request
