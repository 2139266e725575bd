"""The callback flow, path by path: each test feeds events and reads the commands back."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callnow.domain.calls import FailureCause, LegRole
from callnow.domain.flow import (
    Abort,
    AcceptanceMode,
    Bridge,
    CallbackFlow,
    Cancel,
    CancelTimer,
    Command,
    DialOwner,
    DialVisitor,
    Digit,
    DigitSource,
    Event,
    Finish,
    FlowLimits,
    FlowState,
    HangupLeg,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRinging,
    Outcome,
    OwnerBusyFor,
    OwnerDiverted,
    PlayPrompt,
    PromptFinished,
    PromptKind,
    RecordLeg,
    RequestFacts,
    RequestStateChanged,
    Start,
    StartTimer,
    StopPrompt,
    TimerFired,
    TimerName,
)
from callnow.domain.request_state import RequestState, check_transition

OWNER = LegRole.OWNER
VISITOR = LegRole.VISITOR

CONFIRM_TEXT = (
    "Call request from Mary, 0 2, 9 0 3 7, 5 6 7 8. Press 1 to call back now, 2 to decline."
)
LIMITS = FlowLimits(owner_ring_s=30, visitor_ring_s=45, digit_wait_s=6, max_call_duration_s=3600)


def facts(acceptance: AcceptanceMode = AcceptanceMode.CONFIRM, **overrides: object) -> RequestFacts:
    values: dict[str, object] = {
        "request_ref": "req-1",
        "visitor_e164": "+61290375678",
        "caller_name": "Mary",
        "owner_internal_number": "201",
        "owner_external_e164": "+61299990201",
        "acceptance": acceptance,
        "region": "AU",
    }
    values.update(overrides)
    return RequestFacts(**values)  # type: ignore[arg-type]  # each value fits its field


def new_flow(
    acceptance: AcceptanceMode = AcceptanceMode.CONFIRM, limits: FlowLimits = LIMITS
) -> CallbackFlow:
    return CallbackFlow(facts(acceptance), limits)


def feed(flow: CallbackFlow, *events: Event) -> list[Command]:
    """Feed events in order; return the commands of the last one."""
    commands: list[Command] = []
    for event in events:
        commands = flow.handle(event)
    return commands


def owner_asked() -> CallbackFlow:
    """A confirm-mode flow whose owner has answered and is hearing the prompt."""
    flow = new_flow()
    feed(flow, Start(), LegRinging(OWNER), LegAnswered(OWNER))
    return flow


def visitor_ringing(acceptance: AcceptanceMode = AcceptanceMode.CONFIRM) -> CallbackFlow:
    flow = new_flow(acceptance)
    feed(flow, Start(), LegAnswered(OWNER))
    if acceptance is AcceptanceMode.CONFIRM:
        feed(flow, Digit("1"))
    feed(flow, LegRinging(VISITOR))
    return flow


def connected() -> CallbackFlow:
    flow = visitor_ringing()
    feed(flow, LegAnswered(VISITOR))
    return flow


def finished(state: RequestState, reason: str) -> list[Command]:
    """The tail every finishing step ends with."""
    return [RequestStateChanged(state, reason), Finish(Outcome(state, reason))]


# -- dialling the owner -------------------------------------------------------------------------


def test_start_reports_calling_owner_arms_the_ring_timer_and_dials_the_internal_number() -> None:
    flow = new_flow()

    assert flow.handle(Start()) == [
        RequestStateChanged(RequestState.CALLING_OWNER, "dialling_owner"),
        StartTimer(TimerName.OWNER_RING, 30),
        DialOwner("201"),
    ]
    assert flow.state is FlowState.CALLING_OWNER
    assert flow.request_state is RequestState.CALLING_OWNER


def test_ringing_changes_nothing_the_flow_just_waits() -> None:
    flow = new_flow()
    feed(flow, Start())

    assert flow.handle(LegRinging(OWNER)) == []


@pytest.mark.parametrize(
    ("cause", "state", "reason"),
    [
        (FailureCause.BUSY, RequestState.OWNER_UNREACHABLE, "owner_busy"),
        (FailureCause.NO_ANSWER, RequestState.OWNER_UNREACHABLE, "owner_no_answer"),
        (FailureCause.FAILED, RequestState.OWNER_UNREACHABLE, "owner_failed"),
        # Pressing "reject" on a ringing phone (603 Decline) is a decision, not unreachability.
        (FailureCause.REJECTED, RequestState.OWNER_DECLINED, "owner_rejected"),
    ],
)
def test_an_owner_leg_that_fails_ends_the_request(
    cause: FailureCause, state: RequestState, reason: str
) -> None:
    flow = new_flow()
    feed(flow, Start(), LegRinging(OWNER))

    assert flow.handle(LegFailed(OWNER, cause, 486)) == [
        CancelTimer(TimerName.OWNER_RING),
        RecordLeg(OWNER, cause, 486),
        *finished(state, reason),
    ]
    assert flow.finished
    assert flow.outcome == Outcome(state, reason)


HOLDING = FlowLimits(owner_busy_hold_s=30)


@pytest.mark.parametrize("code", [486, 600])
def test_a_busy_owner_is_held_with_the_final_state_so_the_next_callback_waits(code: int) -> None:
    flow = new_flow(limits=HOLDING)
    feed(flow, Start(), LegRinging(OWNER))

    assert flow.handle(LegFailed(OWNER, FailureCause.BUSY, code)) == [
        CancelTimer(TimerName.OWNER_RING),
        RecordLeg(OWNER, FailureCause.BUSY, code),
        OwnerBusyFor(30),
        *finished(RequestState.OWNER_UNREACHABLE, "owner_busy"),
    ]


def test_a_busy_owner_is_not_held_when_the_hold_is_zero() -> None:
    flow = new_flow(limits=FlowLimits(owner_busy_hold_s=0))
    feed(flow, Start())

    commands = flow.handle(LegFailed(OWNER, FailureCause.BUSY, 486))

    assert not [c for c in commands if isinstance(c, OwnerBusyFor)]
    assert flow.outcome == Outcome(RequestState.OWNER_UNREACHABLE, "owner_busy")


@pytest.mark.parametrize(
    "events",
    [
        [LegFailed(OWNER, FailureCause.NO_ANSWER, 480)],
        [LegFailed(OWNER, FailureCause.FAILED, 503)],
        [LegFailed(OWNER, FailureCause.REJECTED, 603)],
        [TimerFired(TimerName.OWNER_RING)],
        [OwnerDiverted(181)],
        # The visitor's busy is the visitor's: the owner answered and is free.
        [LegAnswered(OWNER), Digit("1"), LegFailed(VISITOR, FailureCause.BUSY, 486)],
    ],
    ids=["no_answer", "failed", "rejected", "ring_timeout", "voicemail", "visitor_busy"],
)
def test_only_the_owners_busy_holds_the_owner(events: list[Event]) -> None:
    flow = new_flow(limits=HOLDING)
    commands = [command for event in [Start(), *events] for command in flow.handle(event)]
    commands += flow.handle(PromptFinished())  # the notice the owner hears, if any

    assert flow.finished
    assert not [c for c in commands if isinstance(c, OwnerBusyFor)]


def test_a_negative_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="hold"):
        FlowLimits(owner_busy_hold_s=-1)


def test_an_owner_who_does_not_answer_in_time_is_hung_up_on_and_unreachable() -> None:
    flow = new_flow()
    feed(flow, Start(), LegRinging(OWNER))

    assert flow.handle(TimerFired(TimerName.OWNER_RING)) == [
        HangupLeg(OWNER, "owner_no_answer"),
        RecordLeg(OWNER, FailureCause.NO_ANSWER),
        *finished(RequestState.OWNER_UNREACHABLE, "owner_no_answer"),
    ]


@pytest.mark.parametrize("code", [181, 200])
def test_a_diverted_owner_call_is_hung_up_at_once_as_not_answered(code: int) -> None:
    flow = new_flow()
    feed(flow, Start(), LegRinging(OWNER))

    assert flow.handle(OwnerDiverted(code)) == [
        HangupLeg(OWNER, "owner_voicemail"),
        CancelTimer(TimerName.OWNER_RING),
        RecordLeg(OWNER, FailureCause.NO_ANSWER, code),
        *finished(RequestState.OWNER_UNREACHABLE, "owner_voicemail"),
    ]
    assert not any(isinstance(c, PlayPrompt | DialVisitor) for c in flow.handle(Digit("1")))


def test_a_divert_reported_after_the_owner_answered_changes_nothing() -> None:
    flow = owner_asked()

    assert flow.handle(OwnerDiverted(200)) == []
    assert flow.state is FlowState.ASKING_OWNER


# -- confirmation required ----------------------------------------------------------------------


def test_when_the_owner_answers_the_confirm_prompt_plays() -> None:
    flow = new_flow()
    feed(flow, Start())

    assert flow.handle(LegAnswered(OWNER)) == [
        CancelTimer(TimerName.OWNER_RING),
        PlayPrompt(PromptKind.CONFIRM, CONFIRM_TEXT),
        StartTimer(TimerName.PROMPT_LIMIT, 30),  # in case the end of the prompt is never reported
    ]
    assert flow.state is FlowState.ASKING_OWNER
    assert flow.request_state is RequestState.CALLING_OWNER


def test_the_prompt_reads_the_cost_phrase_billing_supplied() -> None:
    flow = CallbackFlow(facts(cost_phrase="a local call, 12 cents"), LIMITS)
    commands = feed(flow, Start(), LegAnswered(OWNER))

    assert (
        PlayPrompt(
            PromptKind.CONFIRM,
            "Call request from Mary, 0 2, 9 0 3 7, 5 6 7 8, a local call, 12 cents. "
            "Press 1 to call back now, 2 to decline.",
        )
        in commands
    )


def test_pressing_1_stops_the_prompt_and_dials_the_visitor_with_the_owners_number() -> None:
    flow = owner_asked()

    assert flow.handle(Digit("1")) == [
        StopPrompt(),
        CancelTimer(TimerName.PROMPT_LIMIT),
        RequestStateChanged(RequestState.CALLING_VISITOR, "owner_pressed_1"),
        StartTimer(TimerName.VISITOR_RING, 45),
        DialVisitor("+61290375678", caller_id="+61299990201"),
    ]
    assert flow.state is FlowState.CALLING_VISITOR


def test_pressing_1_after_the_prompt_finished_cancels_the_digit_wait_instead() -> None:
    flow = owner_asked()
    feed(flow, PromptFinished())

    assert flow.handle(Digit("1", DigitSource.SIP_INFO))[:1] == [CancelTimer(TimerName.DIGIT_WAIT)]


def test_pressing_2_declines_and_hangs_up_on_the_owner() -> None:
    flow = owner_asked()

    assert flow.handle(Digit("2")) == [
        CancelTimer(TimerName.PROMPT_LIMIT),
        HangupLeg(OWNER, "owner_pressed_2"),
        RecordLeg(OWNER),
        *finished(RequestState.OWNER_DECLINED, "owner_pressed_2"),
    ]


@pytest.mark.parametrize("key", ["0", "3", "9", "*", "#", "A"])
def test_other_keys_are_ignored(key: str) -> None:
    flow = owner_asked()

    assert flow.handle(Digit(key)) == []
    assert flow.state is FlowState.ASKING_OWNER


def test_after_the_prompt_the_flow_waits_for_a_key() -> None:
    flow = owner_asked()

    assert flow.handle(PromptFinished()) == [
        CancelTimer(TimerName.PROMPT_LIMIT),
        StartTimer(TimerName.DIGIT_WAIT, 6),
    ]


def test_a_prompt_whose_end_is_never_reported_counts_as_finished_at_its_limit() -> None:
    flow = owner_asked()

    assert flow.handle(TimerFired(TimerName.PROMPT_LIMIT)) == [StartTimer(TimerName.DIGIT_WAIT, 6)]


def test_silence_replays_the_prompt_up_to_three_plays_then_the_owner_is_unreachable() -> None:
    flow = owner_asked()  # first play
    replay = [
        PlayPrompt(PromptKind.CONFIRM, CONFIRM_TEXT),
        StartTimer(TimerName.PROMPT_LIMIT, 30),
    ]

    assert feed(flow, PromptFinished(), TimerFired(TimerName.DIGIT_WAIT)) == replay  # second
    assert feed(flow, PromptFinished(), TimerFired(TimerName.DIGIT_WAIT)) == replay  # third
    assert feed(flow, PromptFinished(), TimerFired(TimerName.DIGIT_WAIT)) == [
        HangupLeg(OWNER, "prompt_unanswered"),
        RecordLeg(OWNER),
        *finished(RequestState.OWNER_UNREACHABLE, "prompt_unanswered"),
    ]


def test_the_number_of_plays_is_configurable() -> None:
    flow = new_flow(limits=FlowLimits(max_prompt_plays=1))
    feed(flow, Start(), LegAnswered(OWNER), PromptFinished())

    assert flow.handle(TimerFired(TimerName.DIGIT_WAIT))[-1] == Finish(
        Outcome(RequestState.OWNER_UNREACHABLE, "prompt_unanswered")
    )


def test_a_key_during_a_replay_still_counts() -> None:
    flow = owner_asked()
    feed(flow, PromptFinished(), TimerFired(TimerName.DIGIT_WAIT))

    assert DialVisitor("+61290375678", "+61299990201") in flow.handle(Digit("1"))


def test_the_owner_hanging_up_on_the_prompt_declines() -> None:
    flow = owner_asked()

    assert flow.handle(LegEnded(OWNER, by_remote=True)) == [
        RecordLeg(OWNER),
        CancelTimer(TimerName.PROMPT_LIMIT),
        *finished(RequestState.OWNER_DECLINED, "owner_hung_up_during_prompt"),
    ]


def test_the_owner_leg_dropping_during_the_prompt_is_a_failure_not_a_decision() -> None:
    flow = owner_asked()
    feed(flow, PromptFinished())

    assert flow.handle(LegEnded(OWNER, by_remote=False)) == [
        RecordLeg(OWNER),
        CancelTimer(TimerName.DIGIT_WAIT),
        *finished(RequestState.FAILED, "owner_leg_dropped"),
    ]


# -- auto-accepted and accepted on the web ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"),
    [(AcceptanceMode.AUTO, "auto_accepted"), (AcceptanceMode.WEB, "accepted_on_web")],
)
def test_an_accepted_request_whispers_to_the_owner_and_dials_the_visitor_at_once(
    mode: AcceptanceMode, reason: str
) -> None:
    flow = new_flow(mode)
    feed(flow, Start())

    assert flow.handle(LegAnswered(OWNER)) == [
        CancelTimer(TimerName.OWNER_RING),
        PlayPrompt(PromptKind.WHISPER, "CallNow call to Mary."),
        RequestStateChanged(RequestState.CALLING_VISITOR, reason),
        StartTimer(TimerName.VISITOR_RING, 45),
        DialVisitor("+61290375678", "+61299990201"),
    ]


def test_keys_mean_nothing_when_no_one_asked() -> None:
    flow = visitor_ringing(AcceptanceMode.AUTO)

    assert flow.handle(Digit("2")) == []
    assert flow.state is FlowState.CALLING_VISITOR


def test_a_visitor_answering_during_the_whisper_cuts_it_short_before_the_bridge() -> None:
    flow = visitor_ringing(AcceptanceMode.AUTO)

    assert flow.handle(LegAnswered(VISITOR))[:3] == [
        CancelTimer(TimerName.VISITOR_RING),
        StopPrompt(),
        Bridge(),
    ]


def test_once_the_whisper_finished_the_bridge_needs_no_stop() -> None:
    flow = visitor_ringing(AcceptanceMode.WEB)
    assert flow.handle(PromptFinished()) == []  # no digit wait: nobody is being asked

    assert StopPrompt() not in flow.handle(LegAnswered(VISITOR))


# -- calling the visitor ----------------------------------------------------------------------


def test_the_owner_hanging_up_while_the_visitor_rings_cancels_the_visitor_leg() -> None:
    flow = visitor_ringing()

    assert flow.handle(LegEnded(OWNER)) == [
        RecordLeg(OWNER),
        CancelTimer(TimerName.VISITOR_RING),
        HangupLeg(VISITOR, "owner_hung_up_before_connect"),
        RecordLeg(VISITOR),
        *finished(RequestState.COMPLETED, "owner_hung_up_before_connect"),
    ]


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (FailureCause.BUSY, "requester_busy"),
        (FailureCause.NO_ANSWER, "requester_no_answer"),
        (FailureCause.FAILED, "requester_failed"),
        (FailureCause.REJECTED, "requester_rejected"),
    ],
)
def test_an_unreachable_visitor_is_announced_to_the_waiting_owner(
    cause: FailureCause, reason: str
) -> None:
    flow = visitor_ringing()

    assert flow.handle(LegFailed(VISITOR, cause, 404)) == [
        CancelTimer(TimerName.VISITOR_RING),
        RecordLeg(VISITOR, cause, 404),
        PlayPrompt(PromptKind.NOTICE, "Sorry, we could not reach Mary. Goodbye."),
        StartTimer(TimerName.PROMPT_LIMIT, 30),
    ]
    assert flow.state is FlowState.TELLING_OWNER

    assert flow.handle(PromptFinished()) == [
        CancelTimer(TimerName.PROMPT_LIMIT),
        HangupLeg(OWNER, reason),
        RecordLeg(OWNER),
        *finished(RequestState.VISITOR_UNREACHABLE, reason),
    ]


def test_a_visitor_who_does_not_answer_in_time_is_hung_up_on_and_announced() -> None:
    flow = visitor_ringing()

    assert flow.handle(TimerFired(TimerName.VISITOR_RING))[:3] == [
        HangupLeg(VISITOR, "requester_no_answer"),
        RecordLeg(VISITOR, FailureCause.NO_ANSWER),
        PlayPrompt(PromptKind.NOTICE, "Sorry, we could not reach Mary. Goodbye."),
    ]


def test_a_failure_during_the_whisper_stops_it_for_the_notice() -> None:
    flow = visitor_ringing(AcceptanceMode.AUTO)

    commands = flow.handle(LegFailed(VISITOR, FailureCause.BUSY, 486))

    assert commands[2:4] == [
        StopPrompt(),
        PlayPrompt(PromptKind.NOTICE, "Sorry, we could not reach Mary. Goodbye."),
    ]


def test_a_notice_that_never_ends_is_cut_by_its_limit() -> None:
    flow = visitor_ringing()
    feed(flow, LegFailed(VISITOR, FailureCause.BUSY))

    assert flow.handle(TimerFired(TimerName.PROMPT_LIMIT)) == [
        HangupLeg(OWNER, "requester_busy"),
        RecordLeg(OWNER),
        *finished(RequestState.VISITOR_UNREACHABLE, "requester_busy"),
    ]


@pytest.mark.parametrize(
    "interruption", [LegEnded(OWNER), LegEnded(OWNER, by_remote=False), Cancel("x"), Abort("y")]
)
def test_whatever_cuts_the_notice_short_the_visitor_stays_unreachable(
    interruption: Event,
) -> None:
    flow = visitor_ringing()
    feed(flow, LegFailed(VISITOR, FailureCause.NO_ANSWER))

    assert flow.handle(interruption)[-1] == Finish(
        Outcome(RequestState.VISITOR_UNREACHABLE, "requester_no_answer")
    )


def test_keys_during_the_notice_are_ignored() -> None:
    flow = visitor_ringing()
    feed(flow, LegFailed(VISITOR, FailureCause.NO_ANSWER))

    assert flow.handle(Digit("1")) == []
    assert flow.handle(Digit("2")) == []


# -- connected ----------------------------------------------------------------------------------


def test_both_legs_answered_are_bridged_under_a_max_duration_timer() -> None:
    flow = visitor_ringing()

    assert flow.handle(LegAnswered(VISITOR)) == [
        CancelTimer(TimerName.VISITOR_RING),
        Bridge(),
        RequestStateChanged(RequestState.CONNECTED, "bridged"),
        StartTimer(TimerName.MAX_DURATION, 3600),
    ]
    assert flow.state is FlowState.CONNECTED


def test_a_budget_shortens_the_max_duration() -> None:
    flow = CallbackFlow(facts(), FlowLimits(max_call_duration_s=3600, budget_max_duration_s=240))
    feed(flow, Start(), LegAnswered(OWNER), Digit("1"))

    assert StartTimer(TimerName.MAX_DURATION, 240) in flow.handle(LegAnswered(VISITOR))


@pytest.mark.parametrize(
    ("who", "reason"), [(OWNER, "owner_hung_up"), (VISITOR, "requester_hung_up")]
)
def test_either_side_hanging_up_ends_the_other_and_completes(who: LegRole, reason: str) -> None:
    flow = connected()

    assert flow.handle(LegEnded(who)) == [
        RecordLeg(who),
        CancelTimer(TimerName.MAX_DURATION),
        HangupLeg(who.other, reason),
        RecordLeg(who.other),
        *finished(RequestState.COMPLETED, reason),
    ]


def test_a_dropped_leg_after_the_bridge_still_completes_the_call() -> None:
    flow = connected()

    assert flow.handle(LegEnded(VISITOR, by_remote=False))[-1] == Finish(
        Outcome(RequestState.COMPLETED, "requester_leg_dropped")
    )


def test_the_max_duration_hangs_up_both_legs() -> None:
    flow = connected()

    assert flow.handle(TimerFired(TimerName.MAX_DURATION)) == [
        HangupLeg(OWNER, "max_duration_reached"),
        RecordLeg(OWNER),
        HangupLeg(VISITOR, "max_duration_reached"),
        RecordLeg(VISITOR),
        *finished(RequestState.COMPLETED, "max_duration_reached"),
    ]


# -- cancel and abort ---------------------------------------------------------------------------


def test_a_cancel_before_start_finishes_without_dialling() -> None:
    flow = new_flow()

    assert flow.handle(Cancel("visitor_cancelled")) == finished(
        RequestState.CANCELLED, "visitor_cancelled"
    )
    assert flow.handle(Start()) == []


def test_a_cancel_while_the_owner_rings_hangs_up_the_owner() -> None:
    flow = new_flow()
    feed(flow, Start())

    assert flow.handle(Cancel("visitor_cancelled")) == [
        CancelTimer(TimerName.OWNER_RING),
        HangupLeg(OWNER, "visitor_cancelled"),
        RecordLeg(OWNER),
        *finished(RequestState.CANCELLED, "visitor_cancelled"),
    ]


def test_a_cancel_once_the_visitor_is_called_completes_the_request() -> None:
    # The request state machine allows no `cancelled` after calling_requester.
    flow = visitor_ringing()

    assert flow.handle(Cancel("owner_cancelled"))[-1] == Finish(
        Outcome(RequestState.COMPLETED, "owner_cancelled")
    )


def test_an_abort_hangs_up_every_live_leg_and_fails() -> None:
    flow = connected()

    commands = flow.handle(Abort("sip_engine_gone"))

    assert [c for c in commands if isinstance(c, HangupLeg)] == [
        HangupLeg(OWNER, "sip_engine_gone"),
        HangupLeg(VISITOR, "sip_engine_gone"),
    ]
    assert commands[-1] == Finish(Outcome(RequestState.FAILED, "sip_engine_gone"))


# -- ignored events -----------------------------------------------------------------------------


def test_everything_after_finish_is_ignored() -> None:
    flow = owner_asked()
    feed(flow, Digit("2"))

    for event in (Digit("1"), LegAnswered(VISITOR), LegEnded(OWNER), Cancel("x"), Start()):
        assert flow.handle(event) == []
    assert flow.outcome == Outcome(RequestState.OWNER_DECLINED, "owner_pressed_2")


@pytest.mark.parametrize(
    "event",
    [
        Digit("1"),
        LegAnswered(VISITOR),
        LegEnded(VISITOR),
        LegFailed(VISITOR, FailureCause.BUSY),
        PromptFinished(),
        TimerFired(TimerName.DIGIT_WAIT),
        TimerFired("no_such_timer"),
    ],
)
def test_events_that_do_not_fit_the_state_are_ignored(event: Event) -> None:
    flow = new_flow()
    feed(flow, Start())

    assert flow.handle(event) == []
    assert flow.state is FlowState.CALLING_OWNER


def test_a_timer_that_fires_after_it_was_cancelled_is_ignored() -> None:
    flow = new_flow()
    feed(flow, Start(), LegAnswered(OWNER))  # cancels the owner ring timer

    assert flow.handle(TimerFired(TimerName.OWNER_RING)) == []


def test_the_owner_answering_twice_plays_the_prompt_once() -> None:
    flow = owner_asked()

    assert flow.handle(LegAnswered(OWNER)) == []


def test_a_second_1_does_not_dial_the_visitor_again() -> None:
    flow = owner_asked()
    feed(flow, Digit("1"))

    assert flow.handle(Digit("1")) == []


def test_events_before_start_are_ignored() -> None:
    flow = new_flow()

    assert flow.handle(LegAnswered(OWNER)) == []
    assert flow.state is FlowState.IDLE


# -- invariants over random event sequences -----------------------------------------------------

roles = st.sampled_from(LegRole)
events = st.one_of(
    st.just(Start()),
    st.builds(LegRinging, roles),
    st.builds(LegAnswered, roles),
    st.builds(LegFailed, roles, st.sampled_from(FailureCause), st.sampled_from([None, 486, 503])),
    st.builds(LegEnded, roles, st.booleans()),
    st.builds(OwnerDiverted, st.sampled_from([None, 181, 200])),
    st.builds(Digit, st.sampled_from(["1", "2", "5", "#"]), st.sampled_from(DigitSource)),
    st.just(PromptFinished()),
    st.builds(TimerFired, st.sampled_from([*TimerName, "bogus"])),
    st.builds(Cancel, st.just("visitor_cancelled")),
    st.builds(Abort, st.just("engine_error")),
)
# Mostly the "happy" events, so random runs get deep into the flow as often as not.
likely_events = st.one_of(
    st.sampled_from(
        [Start(), LegAnswered(OWNER), Digit("1"), LegAnswered(VISITOR), PromptFinished()]
    ),
    events,
)


def run_all(flow: CallbackFlow, sequence: list[Event]) -> list[tuple[Event, list[Command]]]:
    return [(event, flow.handle(event)) for event in sequence]


# Random runs start from scratch or from a typical opening, so many of them reach the bridge.
openings = st.sampled_from(
    [
        [],
        [Start()],
        [Start(), LegAnswered(OWNER)],
        [Start(), LegAnswered(OWNER), Digit("1")],
        [Start(), LegAnswered(OWNER), Digit("1"), LegAnswered(VISITOR)],
    ]
)


@settings(max_examples=500)
@given(
    mode=st.sampled_from(AcceptanceMode),
    opening=openings,
    sequence=st.lists(likely_events, max_size=25),
)
def test_invariants_hold_for_any_sequence_of_events(
    mode: AcceptanceMode, opening: list[Event], sequence: list[Event]
) -> None:
    flow = new_flow(mode)
    # A final Cancel forces the flow to finish, so "every dialled leg is recorded" is checkable.
    steps = run_all(flow, [*opening, *sequence, Cancel("end_of_test")])
    commands = [command for _, command_list in steps for command in command_list]

    # The visitor is dialled at most once, and only after the owner accepted.
    dial_steps = [(e, cs) for e, cs in steps if any(isinstance(c, DialVisitor) for c in cs)]
    assert len(dial_steps) <= 1
    for event, _ in dial_steps:
        if mode is AcceptanceMode.CONFIRM:
            assert isinstance(event, Digit) and event.digit == "1"
        else:
            assert event == LegAnswered(OWNER)
    assert sum(isinstance(c, DialOwner) for c in commands) <= 1

    # Every dialled leg ends in exactly one record; no leg is recorded without being dialled.
    dialled = {OWNER} if any(isinstance(c, DialOwner) for c in commands) else set()
    if dial_steps:
        dialled.add(VISITOR)
    recorded = [c.role for c in commands if isinstance(c, RecordLeg)]
    assert sorted(recorded) == sorted(dialled)

    # Finish comes exactly once, last, and nothing follows it.
    assert flow.finished
    finish_positions = [i for i, c in enumerate(commands) if isinstance(c, Finish)]
    assert finish_positions == [len(commands) - 1]

    # A bridge needs both legs answered and happens at most once.
    assert sum(isinstance(c, Bridge) for c in commands) <= 1

    # No hang-up or record for a leg after its record.
    for role in dialled:
        last_record = max(
            i for i, c in enumerate(commands) if isinstance(c, RecordLeg) and c.role is role
        )
        assert not any(
            isinstance(c, HangupLeg | RecordLeg) and c.role is role
            for c in commands[last_record + 1 :]
        )

    # Every timer started is fired or cancelled by the end: nothing left ticking.
    assert_no_timer_left_running(steps)

    # Request states follow the request state machine, starting from queued.
    current = RequestState.QUEUED
    for command in commands:
        if isinstance(command, RequestStateChanged):
            check_transition(current, command.state)
            current = command.state
    assert flow.outcome is not None and flow.outcome.state is current
    report_depth(flow, commands)


def report_depth(flow: CallbackFlow, commands: list[Command]) -> None:
    """How deep random runs get: `pytest --hypothesis-show-statistics`."""
    hypothesis.event(f"outcome: {flow.outcome.state if flow.outcome else None}")
    hypothesis.event(f"bridged: {any(isinstance(c, Bridge) for c in commands)}")


def assert_no_timer_left_running(steps: list[tuple[Event, list[Command]]]) -> None:
    running: set[str] = set()
    for event, command_list in steps:
        if isinstance(event, TimerFired):
            running.discard(event.name)
        for command in command_list:
            if isinstance(command, StartTimer):
                running.add(command.name)
            elif isinstance(command, CancelTimer):
                assert command.name in running, f"cancelled {command.name}, which was not running"
                running.discard(command.name)
    assert running == set()


@given(mode=st.sampled_from(AcceptanceMode), sequence=st.lists(events, max_size=25))
def test_finished_flows_stay_silent(mode: AcceptanceMode, sequence: list[Event]) -> None:
    flow = new_flow(mode)
    feed(flow, Start(), Abort("stop"))

    assert all(flow.handle(event) == [] for event in sequence)


@given(sequence=st.lists(events, max_size=25))
def test_without_a_1_a_confirm_flow_never_dials_the_visitor(sequence: list[Event]) -> None:
    flow = new_flow(AcceptanceMode.CONFIRM)
    no_ones = [e for e in sequence if not (isinstance(e, Digit) and e.digit == "1")]

    commands = [c for e in no_ones for c in flow.handle(e)]

    assert not any(isinstance(c, DialVisitor) for c in commands)


@settings(max_examples=300)
@given(
    mode=st.sampled_from(AcceptanceMode),
    opening=openings,
    sequence=st.lists(likely_events, max_size=25),
)
def test_when_telephony_falls_silent_the_timers_alone_finish_the_flow(
    mode: AcceptanceMode, opening: list[Event], sequence: list[Event]
) -> None:
    flow = new_flow(mode)
    running: list[str] = []

    def feed_tracking(event: Event) -> None:
        if isinstance(event, TimerFired) and event.name in running:
            running.remove(event.name)
        for command in flow.handle(event):
            if isinstance(command, StartTimer | CancelTimer) and command.name in running:
                running.remove(command.name)
            if isinstance(command, StartTimer):
                running.append(command.name)

    for event in [Start(), *opening, *sequence]:
        feed_tracking(event)
    # From here on only timers fire, oldest first; a state waiting on no timer would stall.
    for _ in range(20):
        if flow.finished:
            break
        assert running, f"stuck in {flow.state} with no timer running"
        feed_tracking(TimerFired(running[0]))

    assert flow.finished
