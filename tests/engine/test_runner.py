"""The engine shell: telephony events in, telephony actions and records out, real timers.

The fake channel notes each action; each test plays the phones by emitting the events a SIP
adapter would. Timers are real asyncio timers with millisecond durations.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from datetime import timedelta

import pytest

from callnow.domain.calls import (
    Disposition,
    FailureCause,
    LegAnsweredAt,
    LegDialling,
    LegHangupPrepared,
    LegRole,
    OwnerBusyUntil,
    PreparedHangup,
)
from callnow.domain.flow import (
    AcceptanceMode,
    Digit,
    FlowLimits,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRinging,
    Outcome,
    OwnerDiverted,
    PromptKind,
    RequestFacts,
)
from callnow.domain.request_state import RequestState
from callnow.engine.runner import CallbackEngine, CallbackHandle
from tests.engine.fakes import T0, FakeChannel, FakeClock, FakeRecorder, FakeTelephony
from tests.support.waiting import until

OWNER = LegRole.OWNER
VISITOR = LegRole.VISITOR

FACTS = RequestFacts(
    request_ref="req-1",
    visitor_e164="+61290375678",
    caller_name="Mary",
    owner_internal_number="201",
    owner_external_e164="+61299990201",
    acceptance=AcceptanceMode.CONFIRM,
)
# Long enough never to fire unless a test means it to.
SLOW = FlowLimits(owner_ring_s=60, visitor_ring_s=60, digit_wait_s=60, max_call_duration_s=600)


class World:
    def __init__(self, action_timeout_s: float = 1.0, **telephony_options: object) -> None:
        self.telephony = FakeTelephony(**telephony_options)  # type: ignore[arg-type]  # its fields
        self.recorder = FakeRecorder()
        self.clock = FakeClock()
        self.engine = CallbackEngine(
            self.telephony,
            self.recorder,
            limits=SLOW,
            clock=self.clock,
            action_timeout_s=action_timeout_s,
        )

    async def start(
        self,
        facts: RequestFacts = FACTS,
        limits: FlowLimits | None = None,
        written_ahead: LegDialling | None = None,
    ) -> tuple[CallbackHandle, FakeChannel]:
        handle = await self.engine.start_callback(facts, limits, written_ahead=written_ahead)
        return handle, self.telephony.channels[-1]

    def states(self) -> list[RequestState]:
        return [state for state, _ in self.recorder.states]


async def outcome_of(handle: CallbackHandle) -> Outcome:
    async with asyncio.timeout(2):
        return await handle.outcome


async def test_a_confirmed_callback_from_first_ring_to_last_record() -> None:
    world = World()
    handle, phones = await world.start()

    await phones.wait_for("dial_owner", "201")
    world.clock.advance(1)
    phones.emit(LegRinging(OWNER))
    world.clock.advance(4)
    phones.emit(LegAnswered(OWNER))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)
    world.clock.advance(7)
    phones.emit(Digit("1"))
    await phones.wait_for("dial_requester", "+61290375678", "+61299990201")
    world.clock.advance(2)
    phones.emit(LegRinging(VISITOR))
    world.clock.advance(5)
    phones.emit(LegAnswered(VISITOR))
    await phones.wait_for("bridge")
    world.clock.advance(62.5)
    phones.emit(LegEnded(VISITOR, by_remote=True))

    assert await outcome_of(handle) == Outcome(RequestState.COMPLETED, "requester_hung_up")
    assert phones.names() == [
        "dial_owner",
        "play_prompt",
        "stop_prompt",
        "dial_requester",
        "bridge",
        "hangup",
        "close",
    ]
    assert world.states() == [
        RequestState.CALLING_OWNER,
        RequestState.CALLING_VISITOR,
        RequestState.CONNECTED,
        RequestState.COMPLETED,
    ]
    visitor = world.recorder.record_of(VISITOR)
    assert visitor.disposition is Disposition.ANSWERED
    assert visitor.destination == "+61290375678"
    assert visitor.billable_seconds == 62
    assert visitor.started_at == T0.replace(second=12)
    owner = world.recorder.record_of(OWNER)
    assert owner.destination == "201"
    assert owner.answered_at == T0.replace(second=5)
    assert owner.billable_seconds == 76  # 7 s deciding + 7 s ringing out + 62.5 s talk, floored


async def test_the_outcome_resolves_only_after_the_channel_is_closed() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    phones.emit(LegFailed(OWNER, FailureCause.BUSY, 486))
    await outcome_of(handle)

    assert phones.closed
    assert not world.engine.active


async def test_a_finished_callback_is_freed_without_the_cyclic_garbage_collector() -> None:
    # An engine runs hundreds of callbacks: what a finished one leaves in a reference cycle
    # waits for the collector, whose pauses then hold up every other call.
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")
    phones.emit(LegFailed(OWNER, FailureCause.BUSY, 486))
    await outcome_of(handle)
    await handle._run._task  # the run's task ends after resolving the outcome
    run = weakref.ref(handle._run)

    gc.disable()
    try:
        del handle, phones
        world.telephony.channels.clear()  # the fake keeps every channel it opened
        assert run() is None
    finally:
        gc.enable()


async def test_an_owner_who_never_answers_is_hung_up_on_by_the_ring_timer() -> None:
    world = World()
    handle, phones = await world.start(limits=FlowLimits(owner_ring_s=0.02))
    phones.emit(LegRinging(OWNER))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_no_answer")
    assert ("hangup", OWNER, "owner_no_answer") in phones.calls
    owner = world.recorder.record_of(OWNER)
    assert owner.disposition is Disposition.NO_ANSWER
    assert owner.ringing_at is not None


async def test_a_silent_owner_hears_the_prompt_three_times_then_is_unreachable() -> None:
    world = World(prompts_finish_at_once=True)
    handle, phones = await world.start(limits=FlowLimits(digit_wait_s=0.01))
    phones.emit(LegAnswered(OWNER))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "prompt_unanswered")
    assert phones.names().count("play_prompt") == 3
    assert world.recorder.record_of(OWNER).disposition is Disposition.ANSWERED


async def test_the_max_duration_timer_ends_a_bridged_call() -> None:
    world = World()
    facts = RequestFacts(**{**FACTS.__dict__, "acceptance": AcceptanceMode.AUTO})
    handle, phones = await world.start(facts, FlowLimits(max_call_duration_s=0.02))
    phones.emit(LegAnswered(OWNER))
    await phones.wait_for("dial_requester", "+61290375678", "+61299990201")
    phones.emit(LegAnswered(VISITOR))

    assert await outcome_of(handle) == Outcome(RequestState.COMPLETED, "max_duration_reached")
    assert ("hangup", OWNER, "max_duration_reached") in phones.calls
    assert ("hangup", VISITOR, "max_duration_reached") in phones.calls
    assert phones.names()[:3] == ["dial_owner", "play_prompt", "dial_requester"]  # whisper


async def test_an_unreachable_visitor_is_announced_then_the_owner_hung_up_on() -> None:
    world = World(prompts_finish_at_once=True)
    handle, phones = await world.start(limits=FlowLimits(visitor_ring_s=0.02))
    phones.emit(LegAnswered(OWNER), Digit("1"))

    assert await outcome_of(handle) == Outcome(
        RequestState.VISITOR_UNREACHABLE, "requester_no_answer"
    )
    assert phones.names()[-4:] == ["hangup", "play_prompt", "hangup", "close"]
    assert ("play_prompt", PromptKind.NOTICE) in phones.calls
    assert world.recorder.record_of(VISITOR).disposition is Disposition.NO_ANSWER


async def test_a_cancelled_timer_does_not_fire() -> None:
    world = World()
    handle, phones = await world.start(limits=FlowLimits(owner_ring_s=0.02))
    phones.emit(LegAnswered(OWNER))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)

    await asyncio.sleep(0.06)

    assert "hangup" not in phones.names()
    assert not handle.done()
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_a_cancel_from_the_web_hangs_up_the_ringing_owner() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    handle.cancel("visitor_cancelled")

    assert await outcome_of(handle) == Outcome(RequestState.CANCELLED, "visitor_cancelled")
    assert ("hangup", OWNER, "visitor_cancelled") in phones.calls
    assert world.recorder.record_of(OWNER).disposition is Disposition.CANCELLED
    assert handle.request_state is RequestState.CANCELLED


async def test_a_dial_that_cannot_start_counts_as_a_failed_leg() -> None:
    world = World(failures={"dial_owner": OSError("no route to the PBX")})
    handle, _ = await world.start()

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_failed")
    assert world.recorder.record_of(OWNER).disposition is Disposition.FAILED


async def test_an_adapter_that_never_returns_from_a_dial_fails_the_leg_in_time() -> None:
    world = World(action_timeout_s=0.02, stalls={"dial_owner"})
    handle, _ = await world.start()

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_failed")


async def test_a_bridge_that_fails_aborts_and_hangs_up_both_legs() -> None:
    world = World(failures={"bridge": RuntimeError("rtpengine said no")})
    handle, phones = await world.start()
    phones.emit(LegAnswered(OWNER), Digit("1"))
    await phones.wait_for("dial_requester", "+61290375678", "+61299990201")
    phones.emit(LegAnswered(VISITOR))

    assert await outcome_of(handle) == Outcome(RequestState.FAILED, "bridge_failed")
    assert ("hangup", OWNER, "bridge_failed") in phones.calls
    assert ("hangup", VISITOR, "bridge_failed") in phones.calls
    assert {r.role for r in world.recorder.records} == {OWNER, VISITOR}


async def test_adapters_may_report_from_their_own_thread() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    sip_thread = threading.Thread(target=phones.emit, args=(LegFailed(OWNER, FailureCause.BUSY),))
    sip_thread.start()
    sip_thread.join()

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_busy")


async def test_events_after_the_end_change_nothing() -> None:
    world = World()
    handle, phones = await world.start()
    phones.emit(LegFailed(OWNER, FailureCause.NO_ANSWER, 480))
    await outcome_of(handle)
    calls_at_the_end = list(phones.calls)

    phones.emit(LegAnswered(OWNER), Digit("1"))
    await asyncio.sleep(0.01)

    assert phones.calls == calls_at_the_end
    assert len(world.recorder.records) == 1


async def test_each_leg_is_noted_in_the_store_before_it_is_dialled() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    assert world.recorder.dialling == [(OWNER, "201")]
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_a_leg_the_store_will_not_note_is_never_dialled() -> None:
    world = World()
    world.recorder.already_dialled = {OWNER}
    handle, phones = await world.start()

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_failed")
    assert "dial_owner" not in phones.names()


async def test_a_store_failing_mid_call_does_not_keep_a_leg_up() -> None:
    world = World()
    handle, phones = await world.start()
    phones.emit(LegAnswered(OWNER))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)
    world.recorder.fail_writes = True
    phones.emit(Digit("2"))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_DECLINED, "owner_pressed_2")
    assert ("hangup", OWNER, "owner_pressed_2") in phones.calls


async def test_a_crash_in_the_flow_still_hangs_up_and_records_every_leg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    handle, phones = await world.start()
    phones.emit(LegAnswered(OWNER))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)

    def broken(event: object) -> list[object]:
        raise KeyError("bug")

    monkeypatch.setattr(handle._run.flow, "handle", broken)
    phones.emit(Digit("1"))

    outcome = await outcome_of(handle)
    assert outcome == Outcome(RequestState.FAILED, "engine_error: KeyError")
    assert ("hangup", OWNER, "engine_error: KeyError") in phones.calls
    assert world.recorder.record_of(OWNER).disposition is Disposition.ANSWERED
    assert world.states()[-1] is RequestState.FAILED
    assert phones.closed


async def test_shutdown_aborts_every_callback_in_progress() -> None:
    world = World()
    first, first_phones = await world.start()
    second, _ = await world.start(RequestFacts(**{**FACTS.__dict__, "request_ref": "req-2"}))
    first_phones.emit(LegAnswered(OWNER))

    await world.engine.shutdown("engine_shutdown")

    assert first.outcome.result() == Outcome(RequestState.FAILED, "engine_shutdown")
    assert second.outcome.result() == Outcome(RequestState.FAILED, "engine_shutdown")
    assert not world.engine.active


async def test_a_channel_that_cannot_open_leaves_nothing_behind() -> None:
    world = World()

    async def refuse(facts: object, events: object) -> None:
        raise ConnectionRefusedError("rtpengine is down")

    world.telephony.open_call = refuse  # type: ignore[method-assign,assignment]  # fails to open

    with pytest.raises(ConnectionRefusedError):
        await world.start()
    assert not world.engine.active
    assert world.recorder.states == []


async def test_the_same_request_cannot_run_twice_at_once() -> None:
    world = World()
    handle, _ = await world.start()

    with pytest.raises(ValueError, match="already running"):
        await world.start()
    handle.cancel("test_over")
    await outcome_of(handle)


# -- how the engine hands its facts to the store -----------------------------------------------


def kinds(batch: list[object]) -> list[str]:
    return [type(write).__name__ for write in batch]


async def test_the_state_change_and_the_write_ahead_row_of_a_dial_are_one_unit() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    assert [kinds(batch) for batch in world.recorder.batches] == [["StateChanged", "LegDialling"]]
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_an_owner_leg_written_ahead_by_the_caller_is_dialled_before_any_write() -> None:
    world = World()
    world.recorder.held_until = asyncio.Event()  # the database is slow today
    handle, phones = await world.start(written_ahead=LegDialling(OWNER, "201", T0))

    await phones.wait_for("dial_owner", "201")
    assert world.recorder.batches == []  # the INVITE did not wait for the state change
    world.recorder.held_until.set()
    await until(lambda: world.recorder.batches, within_s=2)
    assert [kinds(batch) for batch in world.recorder.batches] == [["StateChanged"]]
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_a_row_written_ahead_for_another_number_does_not_stand_for_the_dial() -> None:
    world = World()
    handle, phones = await world.start(written_ahead=LegDialling(OWNER, "999", T0))
    await phones.wait_for("dial_owner", "201")

    assert [kinds(batch) for batch in world.recorder.batches] == [["StateChanged", "LegDialling"]]
    assert world.recorder.dialling == [(OWNER, "201")]
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_an_answer_is_stored_before_the_flow_acts_on_it() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")
    world.clock.advance(3)
    world.recorder.held_until = asyncio.Event()  # the database is slow just now

    phones.emit(LegAnswered(OWNER))
    await asyncio.sleep(0.05)
    assert "play_prompt" not in phones.names()  # the prompt waits for the answer's write
    world.recorder.held_until.set()
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)

    assert [kinds(batch) for batch in world.recorder.batches][1] == ["LegAnsweredAt"]
    assert world.recorder.answers == [LegAnsweredAt(OWNER, T0.replace(second=3))]
    handle.cancel("test_over")
    await outcome_of(handle)


def prepared(method: str) -> LegHangupPrepared:
    return LegHangupPrepared(
        OWNER, PreparedHangup(method, f"{method} sip:201@pbx SIP/2.0", "192.0.2.5", 5060, "c", "m")
    )


async def test_a_ringing_leg_s_cancel_is_stored_at_once_and_its_bye_with_the_answer() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")

    phones.emit(prepared("CANCEL"))
    async with asyncio.timeout(2):
        while len(world.recorder.batches) < 2:
            await asyncio.sleep(0.001)
    phones.emit(prepared("BYE"), LegAnswered(OWNER))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)

    assert [kinds(batch) for batch in world.recorder.batches][1:] == [
        ["LegHangupPrepared"],
        ["LegAnsweredAt", "LegHangupPrepared"],
    ]
    assert "play_prompt" in phones.names()  # the flow heard the answer, not the hangups
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_a_bye_is_stored_with_its_answer_before_the_answer_reaches_the_flow() -> None:
    # A SIP leg prepares its BYE when the 200 OK arrives; the answer event follows only after
    # the media step. An engine killed in between must leave the answer time with the BYE.
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")
    world.clock.advance(3)

    phones.emit(prepared("BYE"))
    await until(lambda: len(world.recorder.batches) == 2, within_s=2)
    assert world.recorder.batches[1] == [
        LegAnsweredAt(OWNER, T0.replace(second=3)),
        prepared("BYE"),
    ]
    assert "play_prompt" not in phones.names()  # the flow has not heard of the answer yet

    world.clock.advance(1)  # the media step took a while
    phones.emit(Digit("5"), LegAnswered(OWNER))  # an early key in between changes nothing
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)
    world.clock.advance(4)
    handle.cancel("test_over")
    await outcome_of(handle)

    assert world.recorder.answers == [LegAnsweredAt(OWNER, T0.replace(second=3))]
    assert world.recorder.record_of(OWNER).answered_at == T0.replace(second=3)


async def test_a_diverted_owner_whose_box_answered_is_recorded_as_not_answered() -> None:
    # The voicemail box's 200 OK prepared the BYE (and noted an answer) before the divert showed.
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")
    phones.emit(prepared("BYE"), OwnerDiverted(sip_code=200))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_voicemail")
    record = world.recorder.record_of(OWNER)
    assert (record.disposition, record.answered_at) == (Disposition.NO_ANSWER, None)


async def test_a_cancel_prepared_while_dialling_joins_the_unit_of_the_dial_s_event() -> None:
    # As a SIP stack does: the INVITE's CANCEL is known as soon as the INVITE is built.
    world = World(emits={"dial_owner": [prepared("CANCEL")]})
    handle, phones = await world.start(written_ahead=LegDialling(OWNER, "201", T0))
    await phones.wait_for("dial_owner", "201")
    await until(lambda: world.recorder.batches, within_s=2)
    phones.emit(LegFailed(OWNER, FailureCause.BUSY, 486))

    await outcome_of(handle)
    assert [kinds(batch) for batch in world.recorder.batches] == [
        ["StateChanged", "LegHangupPrepared"],
        ["LegRecorded", "StateChanged"],
    ]


async def test_a_bye_prepared_while_an_event_is_handled_is_stored_with_its_answer_after_it() -> (
    None
):
    world = World(emits={"dial_owner": [prepared("BYE"), LegAnswered(OWNER)]})
    handle, phones = await world.start(written_ahead=LegDialling(OWNER, "201", T0))
    await phones.wait_for("play_prompt", PromptKind.CONFIRM)

    assert [kinds(batch) for batch in world.recorder.batches][:2] == [
        ["StateChanged"],
        ["LegAnsweredAt", "LegHangupPrepared"],
    ]
    handle.cancel("test_over")
    await outcome_of(handle)


async def test_a_finished_leg_and_the_final_state_are_one_unit() -> None:
    world = World()
    handle, phones = await world.start()
    await phones.wait_for("dial_owner", "201")
    phones.emit(LegFailed(OWNER, FailureCause.BUSY, 486))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_busy")
    assert kinds(world.recorder.batches[-1]) == ["LegRecorded", "StateChanged"]
    assert len(world.recorder.batches) == 2


async def test_a_busy_owner_is_held_from_the_engines_clock_in_the_final_unit() -> None:
    world = World()
    handle, phones = await world.start(limits=FlowLimits(owner_busy_hold_s=30))
    await phones.wait_for("dial_owner", "201")
    world.clock.advance(2)
    phones.emit(LegFailed(OWNER, FailureCause.BUSY, 486))

    assert await outcome_of(handle) == Outcome(RequestState.OWNER_UNREACHABLE, "owner_busy")
    final = world.recorder.batches[-1]
    assert kinds(final) == ["LegRecorded", "OwnerBusyUntil", "StateChanged"]
    assert final[1] == OwnerBusyUntil(T0 + timedelta(seconds=32))


async def test_a_refused_write_ahead_row_does_not_take_the_state_change_with_it() -> None:
    world = World()
    world.recorder.already_dialled = {OWNER}
    handle, _ = await world.start()

    await outcome_of(handle)
    assert world.states() == [RequestState.CALLING_OWNER, RequestState.OWNER_UNREACHABLE]
    assert world.recorder.dialling == []
