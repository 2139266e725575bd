"""The durable queue and the engine's recorder, on SQLite and PostgreSQL.

A request is claimed with a lease, only while its owner has room and is not held after a busy
phone; what the engine writes about
a callback lands as one unit or not at all; a finished callback frees its lease with its final
state; an engine that died mid-call leaves a request that is ended, never dialled again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from callnow.domain.calls import (
    CallRecord,
    Disposition,
    LegAnsweredAt,
    LegDialling,
    LegRecorded,
    LegRole,
    OwnerBusyUntil,
    StateChanged,
)
from callnow.domain.request_state import IllegalTransition, RequestState
from callnow.store import do_not_call, profiles, provisioning, queue, web_confirmation
from callnow.store.db import transaction
from callnow.store.guarded import cancel_for_visitor
from callnow.store.models import CallLeg, CallRequest, RequestEvent
from callnow.store.recorder import StoreRecorder, request_ref
from tests.support.statements import statements_sent
from tests.support.world import queued_request

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
LEASE_S = 30.0


def queued(session, callnow_id: str = "alice", number: str = "+61290375678", decision="confirm"):
    return queued_request(session, callnow_id, number, decision=decision, now=NOW)


def claim(session, *, now: datetime = NOW, engine: str = "engine-a", **limits):
    """Claim one request, as an engine with room for one more call does."""
    claimed = queue.claim_batch(session, engine, LEASE_S, now, limit=1, **limits).requests
    return claimed[0] if claimed else None


# -- claims --------------------------------------------------------------------------------------


def test_the_oldest_queued_request_is_claimed_with_a_lease(world) -> None:
    with world.sessions() as session, session.begin():
        first, second = queued(session), queued(session, "bob", "+61390001234")
        claimed = claim(session)

        assert claimed is not None and claimed.id == first.id
        assert claimed.claimed_by == "engine-a"
        assert claimed.lease_expires_at == NOW + timedelta(seconds=LEASE_S)
        assert claimed.claim_count == 1
        assert claim(session).id == second.id
        assert claim(session) is None


def test_the_claimed_request_comes_with_its_owner_loaded(world) -> None:
    with world.sessions() as session, session.begin():
        queued(session)
        claimed = claim(session)
        assert claimed.profile.extension.tenant.name == "Alice Pty"


def test_a_request_waiting_for_the_owner_on_the_web_is_not_claimed(world) -> None:
    with world.sessions() as session, session.begin():
        queued(session, decision="confirm_web")
        assert claim(session) is None


def test_an_owner_with_a_call_under_way_waits_for_it_to_end(world) -> None:
    with world.sessions() as session, session.begin():
        first = queued(session)
        queued(session, number="+61290375679")
        bob = queued(session, "bob", "+61390001234")
        assert claim(session, max_per_extension=1).id == first.id
        # Alice's second request waits; Bob's, behind it, goes first.
        assert claim(session, max_per_extension=1).id == bob.id
        assert claim(session, max_per_extension=1) is None


def add_alice2_to_alices_tenant(session) -> None:
    """A second owner (page `alice2`, extension 001003) in Alice's tenant."""
    alice = profiles.by_callnow_id(session, "alice")
    second = provisioning.create_extension(
        session, alice.extension.tenant, internal_number="001003", external_number="0290371235"
    )
    provisioning.enable_callnow(session, second, "alice2")


def test_a_tenant_limit_counts_every_extension_of_the_tenant(world) -> None:
    with world.sessions() as session, session.begin():
        add_alice2_to_alices_tenant(session)
        queued(session)
        queued(session, "alice2", "+61290375679")
        assert claim(session, max_per_tenant=1) is not None
        assert claim(session, max_per_tenant=1) is None
        assert claim(session, max_per_tenant=2) is not None


def test_an_expired_lease_of_a_request_never_dialled_is_claimed_again(world) -> None:
    with world.sessions() as session, session.begin():
        request = queued(session)
        assert claim(session, engine="dead").id == request.id
        later = NOW + timedelta(seconds=LEASE_S + 1)
        retaken = claim(session, now=later, engine="alive")
        assert retaken.id == request.id and retaken.claim_count == 2


def test_a_request_with_a_leg_row_is_never_claimed_again_but_ended(world) -> None:
    with world.sessions() as session, session.begin():
        request = queued(session)
        claim(session, engine="dead")
        session.add(
            CallLeg(request_id=request.id, role="owner", destination="001002", started_at=NOW)
        )
        session.flush()
        later = NOW + timedelta(seconds=LEASE_S + 1)

        assert claim(session, now=later) is None
        assert queue.interrupt_abandoned(session, later) == [request.id]
        assert request.state == RequestState.INTERRUPTED.value


def test_a_running_engine_does_not_end_its_own_request_whose_lease_ran_out(world) -> None:
    with world.sessions() as session, session.begin():
        request = queued(session)
        claim(session, engine="starved")
        session.add(
            CallLeg(request_id=request.id, role="owner", destination="001002", started_at=NOW)
        )
        session.flush()
        later = NOW + timedelta(seconds=LEASE_S + 1)

        assert queue.interrupt_abandoned(session, later, sparing="starved") == []
        assert request.state == RequestState.QUEUED.value
        # Any other engine, or this one starting afresh, ends it.
        assert queue.interrupt_abandoned(session, later, sparing="other") == [request.id]


def test_a_backlog_is_claimed_a_batch_at_a_time_within_each_owners_room(world) -> None:
    with world.sessions() as session, session.begin():
        alice_1 = queued(session)
        queued(session, number="+61290375679")
        bob_1 = queued(session, "bob", "+61390001234")
        queued(session, "bob", "+61390001235")

        batch, held_back = queue.claim_batch(
            session, "engine-a", LEASE_S, NOW, limit=10, max_per_extension=1
        )

        assert [r.id for r in batch] == [alice_1.id, bob_1.id]
        assert all(r.claimed_by == "engine-a" for r in batch)
        assert held_back  # each owner's second request waits for their first call to end


def test_owners_in_calls_with_long_backlogs_keep_no_other_owner_waiting(world) -> None:
    with world.sessions() as session, session.begin():
        # Alice is on a callback; more of her requests wait than a claim looks at at once.
        in_call = queued(session)
        in_call.state = RequestState.CALLING_OWNER.value
        backlog = [queued(session, number=f"+612903756{n:02d}") for n in range(60)]
        bob = queued(session, "bob", "+61390001234")

        batch, held_back = queue.claim_batch(
            session, "engine-a", LEASE_S, NOW, limit=10, max_per_extension=1
        )

        assert [r.id for r in batch] == [bob.id]
        assert held_back  # Alice's next request waits for her call to end
        assert backlog[0].claimed_by is None


def test_a_tenant_at_its_limit_with_a_long_backlog_keeps_no_other_tenant_waiting(world) -> None:
    with world.sessions() as session, session.begin():
        add_alice2_to_alices_tenant(session)
        # Alice's tenant is at its limit (Alice is on a callback); more requests for its other
        # owner, who has room of their own, wait than a claim looks at at once.
        in_call = queued(session)
        in_call.state = RequestState.CALLING_OWNER.value
        backlog = [queued(session, "alice2", f"+612903756{n:02d}") for n in range(60)]
        bob = queued(session, "bob", "+61390001234")

        batch, held_back = queue.claim_batch(
            session, "engine-a", LEASE_S, NOW, limit=10, max_per_extension=1, max_per_tenant=1
        )

        assert [r.id for r in batch] == [bob.id]
        assert held_back  # the tenant's next request waits for its call to end
        assert backlog[0].claimed_by is None


def test_a_batch_takes_the_oldest_first_and_no_more_than_asked(world) -> None:
    with world.sessions() as session, session.begin():
        ids = [queued(session, number=f"+6129037567{n}").id for n in range(4)]

        batch, held_back = queue.claim_batch(
            session, "engine-a", LEASE_S, NOW, limit=3, max_per_extension=10
        )

        assert [r.id for r in batch] == ids[:3]
        assert not held_back  # the fourth waits for the next batch, not for room


def test_a_claimed_request_knows_if_its_number_is_on_the_do_not_call_list_without_a_query(
    world,
) -> None:
    with world.sessions() as session, session.begin():
        listed, free = queued(session), queued(session, "bob", "+61390001234")
        do_not_call.add(session, listed.number_e164)
    with world.sessions() as session, session.begin():
        batch, _ = queue.claim_batch(session, "engine-a", LEASE_S, NOW, limit=2)

        with statements_sent(session.get_bind()) as sent:
            answers = {request.id: request.number_on_do_not_call for request in batch}

    assert answers == {listed.id: True, free.id: False}
    assert sent == []


# -- an owner held after their phone answered busy ----------------------------------------------

HOLD = timedelta(seconds=30)


def busy_until(session, callnow_id: str):
    return profiles.by_callnow_id(session, callnow_id).extension.busy_until


def test_a_held_owner_gets_no_claim_until_the_hold_ends_and_others_go_first(world) -> None:
    with world.sessions() as session, session.begin():
        alice = queued(session)
        bob = queued(session, "bob", "+61390001234")
        queue.mark_owner_busy(session, alice.id, NOW + HOLD)

        assert claim(session).id == bob.id  # Alice's request is older, but she is held
        assert claim(session) is None
        assert claim(session, now=NOW + HOLD - timedelta(seconds=1)) is None
        claimed = claim(session, now=NOW + HOLD)
        assert claimed is not None and claimed.id == alice.id


def test_a_held_owners_backlog_does_not_keep_other_owners_waiting(world) -> None:
    with world.sessions() as session, session.begin():
        # More than one claim looks at: held, they must not take every place among the oldest.
        backlog = [queued(session, number=f"+612903756{n:02d}") for n in range(60)]
        bob = queued(session, "bob", "+61390001234")
        queue.mark_owner_busy(session, backlog[0].id, NOW + HOLD)

        batch, held_back = queue.claim_batch(session, "engine-a", LEASE_S, NOW, limit=10)

        assert [r.id for r in batch] == [bob.id]
        assert not held_back  # nothing waits for a call to end: the next poll looks again


def test_a_held_owners_booking_and_web_accepted_request_wait_too(world) -> None:
    with world.sessions() as session, session.begin():
        booked = queued_request(
            session, "alice", "+61290375678", now=NOW - timedelta(hours=1), scheduled_for=NOW
        )
        on_web = queued(session, number="+61290375679", decision="confirm_web")
        assert web_confirmation.accept(session, on_web, now=NOW)
        queue.mark_owner_busy(session, booked.id, NOW + HOLD)

        assert claim(session) is None
        later = NOW + HOLD
        batch, _ = queue.claim_batch(
            session, "engine-a", LEASE_S, later, limit=2, max_per_extension=2
        )
        assert sorted(r.id for r in batch) == sorted([booked.id, on_web.id])


def test_a_held_owners_queued_request_can_still_be_cancelled(world) -> None:
    with world.sessions() as session, session.begin():
        request = queued(session)
        queue.mark_owner_busy(session, request.id, NOW + HOLD)

        cancel_for_visitor(session, request, NOW)

        assert request.state == RequestState.CANCELLED.value
        assert claim(session, now=NOW + HOLD) is None


def test_a_held_owners_requests_are_not_counted_as_waiting_for_an_engine(world) -> None:
    with world.sessions() as session, session.begin():
        held = queued_request(session, "alice", "+61290375678", now=NOW - timedelta(minutes=5))
        queued_request(session, "bob", "+61390001234", now=NOW - timedelta(minutes=1))
        queue.mark_owner_busy(session, held.id, NOW + HOLD)

        assert queue.depth(session, NOW) == (1, 60.0)
        assert queue.owners_held(session, NOW) == 1
        assert queue.depth(session, NOW + HOLD) == (2, 300.0 + HOLD.total_seconds())
        assert queue.owners_held(session, NOW + HOLD) == 0


def test_a_hold_is_never_shortened_by_an_earlier_time(world) -> None:
    with world.sessions() as session, session.begin():
        request = queued(session)
        queue.mark_owner_busy(session, request.id, NOW + HOLD)
        queue.mark_owner_busy(session, request.id, NOW)  # a late, replayed write
        session.expire_all()

        assert busy_until(session, "alice") == NOW + HOLD
        assert busy_until(session, "bob") is None
        queue.mark_owner_busy(session, request.id, NOW + 2 * HOLD)
        session.expire_all()
        assert busy_until(session, "alice") == NOW + 2 * HOLD


@pytest.mark.postgres
def test_two_engines_claiming_at_once_take_different_requests(postgresql_sessions) -> None:
    with transaction(postgresql_sessions) as session:
        ids = [queued(session, number=f"+6129037567{n}").id for n in range(4)]
    with postgresql_sessions() as first, postgresql_sessions() as second:
        first.begin()
        second.begin()
        mine, _ = queue.claim_batch(first, "a", LEASE_S, NOW, limit=2, max_per_extension=10)
        # The first engine has not committed: its rows are locked, and skipped, not waited on.
        theirs, _ = queue.claim_batch(second, "b", LEASE_S, NOW, limit=10, max_per_extension=10)
        first.commit()
        second.commit()
    assert [r.id for r in mine] == ids[:2]
    assert [r.id for r in theirs] == ids[2:]


# -- the recorder --------------------------------------------------------------------------------


def recorder_for(world) -> tuple[StoreRecorder, list[int]]:
    answered: list[int] = []
    return StoreRecorder(world.sessions, on_answered_leg_recorded=answered.append), answered


def claimed_request_id(world) -> int:
    with world.sessions() as session, session.begin():
        queued(session)
        return claim(session).id


def test_a_state_change_and_the_write_ahead_row_land_together(world) -> None:
    request_id = claimed_request_id(world)
    recorder, _ = recorder_for(world)

    asyncio.run(
        recorder.write(
            request_ref(request_id),
            [
                StateChanged(RequestState.CALLING_OWNER, "dialling_owner", NOW),
                LegDialling(LegRole.OWNER, "001002", NOW),
            ],
        )
    )

    with world.sessions() as session:
        request = session.get(CallRequest, request_id)
        assert request.state == RequestState.CALLING_OWNER.value
        assert [leg.role for leg in session.scalars(select(CallLeg))] == ["owner"]
        assert [e.state for e in request.events] == ["received", "queued", "calling_owner"]


def test_a_leg_dialled_before_refuses_the_whole_unit(world) -> None:
    request_id = claimed_request_id(world)
    recorder, _ = recorder_for(world)
    ref = request_ref(request_id)
    asyncio.run(recorder.write(ref, [LegDialling(LegRole.OWNER, "001002", NOW)]))

    with pytest.raises(IntegrityError):
        asyncio.run(
            recorder.write(
                ref,
                [
                    StateChanged(RequestState.CALLING_OWNER, "dialling_owner", NOW),
                    LegDialling(LegRole.OWNER, "001002", NOW),
                ],
            )
        )

    with world.sessions() as session:
        assert session.get(CallRequest, request_id).state == RequestState.QUEUED.value
        assert session.scalar(select(func.count(CallLeg.id))) == 1


def test_a_move_the_domain_forbids_writes_nothing_of_its_unit(world) -> None:
    request_id = claimed_request_id(world)
    recorder, _ = recorder_for(world)
    with world.sessions() as session:
        events_before = session.scalar(select(func.count(RequestEvent.id)))

    with pytest.raises(IllegalTransition):  # queued cannot jump to connected
        asyncio.run(
            recorder.write(
                request_ref(request_id),
                [
                    LegDialling(LegRole.OWNER, "001002", NOW),
                    StateChanged(RequestState.CONNECTED, "impossible", NOW),
                ],
            )
        )

    with world.sessions() as session:
        request = session.get(CallRequest, request_id)
        assert request.state == RequestState.QUEUED.value
        assert request.lease_expires_at is not None
        assert session.scalar(select(func.count(RequestEvent.id))) == events_before
        assert session.scalar(select(func.count(CallLeg.id))) == 0


def test_a_state_change_for_a_request_that_does_not_exist_is_refused(world) -> None:
    recorder, _ = recorder_for(world)

    with pytest.raises(LookupError):
        asyncio.run(
            recorder.write(
                request_ref(999_999),
                [StateChanged(RequestState.CALLING_OWNER, "dialling_owner", NOW)],
            )
        )


def record(request_id: int, role: LegRole, *, answered: bool) -> CallRecord:
    return CallRecord(
        request_ref=request_ref(request_id),
        role=role,
        destination="001002",
        started_at=NOW,
        ringing_at=NOW,
        answered_at=NOW + timedelta(seconds=2) if answered else None,
        ended_at=NOW + timedelta(seconds=10),
        sip_code=200 if answered else 486,
        disposition=Disposition.ANSWERED if answered else Disposition.BUSY,
        billable_seconds=8 if answered else 0,
    )


def owner_dialled(recorder: StoreRecorder, ref: str) -> None:
    """The engine's first unit of a callback: ringing the owner, their leg written ahead."""
    asyncio.run(
        recorder.write(
            ref,
            [
                StateChanged(RequestState.CALLING_OWNER, "dialling_owner", NOW),
                LegDialling(LegRole.OWNER, "001002", NOW),
            ],
        )
    )


def test_the_final_state_frees_the_lease_with_the_last_record(world) -> None:
    request_id = claimed_request_id(world)
    recorder, answered = recorder_for(world)
    ref = request_ref(request_id)
    owner_dialled(recorder, ref)

    asyncio.run(
        recorder.write(
            ref,
            [
                LegRecorded(record(request_id, LegRole.OWNER, answered=False)),
                StateChanged(RequestState.OWNER_UNREACHABLE, "owner_busy", NOW),
            ],
        )
    )

    with world.sessions() as session:
        request = session.get(CallRequest, request_id)
        assert request.state == RequestState.OWNER_UNREACHABLE.value
        assert request.lease_expires_at is None
        (leg,) = session.scalars(select(CallLeg))
        assert (leg.disposition, leg.sip_code) == ("busy", 486)
    assert answered == []  # an unanswered leg costs nothing: billing is not asked


def test_a_busy_owner_is_held_in_the_unit_with_the_final_state(world) -> None:
    request_id = claimed_request_id(world)
    recorder, _ = recorder_for(world)
    ref = request_ref(request_id)
    owner_dialled(recorder, ref)
    ended = NOW + timedelta(seconds=1)

    with pytest.raises(IllegalTransition):  # a unit that cannot land leaves no hold either
        asyncio.run(
            recorder.write(
                ref,
                [OwnerBusyUntil(ended + HOLD), StateChanged(RequestState.QUEUED, "no", ended)],
            )
        )
    with world.sessions() as session:
        assert busy_until(session, "alice") is None

    asyncio.run(
        recorder.write(
            ref,
            [
                LegRecorded(record(request_id, LegRole.OWNER, answered=False)),
                OwnerBusyUntil(ended + HOLD),
                StateChanged(RequestState.OWNER_UNREACHABLE, "owner_busy", ended),
            ],
        )
    )

    with world.sessions() as session:
        assert busy_until(session, "alice") == ended + HOLD
        assert session.get(CallRequest, request_id).state == RequestState.OWNER_UNREACHABLE.value
        assert busy_until(session, "bob") is None


def test_billing_hears_of_each_answered_leg_once_it_is_stored(world) -> None:
    request_id = claimed_request_id(world)
    recorder, answered = recorder_for(world)
    ref = request_ref(request_id)
    asyncio.run(recorder.write(ref, [LegDialling(LegRole.OWNER, "001002", NOW)]))

    asyncio.run(
        recorder.write(ref, [LegRecorded(record(request_id, LegRole.OWNER, answered=True))])
    )

    with world.sessions() as session:
        (leg,) = session.scalars(select(CallLeg))
        assert answered == [leg.id]


def test_an_answer_is_stored_on_its_leg_before_the_leg_ends_and_only_the_first_counts(
    world,
) -> None:
    request_id = claimed_request_id(world)
    recorder, answered = recorder_for(world)
    ref = request_ref(request_id)
    asyncio.run(recorder.write(ref, [LegDialling(LegRole.OWNER, "001002", NOW)]))
    answer = NOW + timedelta(seconds=2)

    asyncio.run(recorder.write(ref, [LegAnsweredAt(LegRole.OWNER, answer)]))
    asyncio.run(recorder.write(ref, [LegAnsweredAt(LegRole.OWNER, answer + timedelta(9))]))

    with world.sessions() as session:
        (leg,) = session.scalars(select(CallLeg))
        assert (leg.answered_at, leg.ended_at, leg.disposition) == (answer, None, None)
    assert answered == []  # billing waits for the leg's end


def test_history_is_appended_without_reading_it(world) -> None:
    request_id = claimed_request_id(world)
    recorder, _ = recorder_for(world)
    ref = request_ref(request_id)
    moves = [
        (RequestState.CALLING_OWNER, "dialling_owner"),
        (RequestState.CALLING_VISITOR, "owner_pressed_1"),
        (RequestState.CONNECTED, "requester_answered"),
        (RequestState.COMPLETED, "requester_hung_up"),
    ]
    for state, reason in moves:
        asyncio.run(recorder.write(ref, [StateChanged(state, reason, NOW)]))

    with world.sessions() as session:
        states = session.scalars(
            select(RequestEvent.state)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        ).all()
        assert states == ["received", "queued", *[state.value for state, _ in moves]]


# -- a new request as returned ----------------------------------------------------------------


def test_a_new_request_is_returned_as_stored_and_nothing_is_written_again(world) -> None:
    """The object `record_new` returns holds what a fresh read of its row holds, the session
    sends no UPDATE for it, its relations load, and a change made to it is written."""
    engine = world.sessions.kw["bind"]
    with world.sessions() as session, session.begin():
        request = queued_request(session, "alice", "+61290375678", now=NOW, scheduled_for=None)
        with statements_sent(engine) as sent:
            session.flush()
        assert not sent
        assert request.profile.callnow_id == "alice"
        assert [event.state for event in request.events] == ["received", "queued"]
    columns = [column.key for column in CallRequest.__table__.columns]
    with world.sessions() as session:
        stored = session.get(CallRequest, request.id)
        assert {c: getattr(stored, c) for c in columns} == {c: getattr(request, c) for c in columns}
    with world.sessions() as session, session.begin():
        again = queued_request(session, "bob", "+61390001234", now=NOW)
        again.caller_name = "Ann"
    with world.sessions() as session:
        assert session.get(CallRequest, again.id).caller_name == "Ann"
