"""The visitor reads the owner's shown name (or a neutral phrase), honest waits, and steps."""

from datetime import timedelta

from callnow.domain.number_hint import number_hint, visitor_refusal
from callnow.domain.request_state import RequestState as S
from callnow.domain.visitor_text import Audience, step_labels, step_of, visitor_message

NAMED = Audience("John Doe")
HIDDEN = Audience(None)


def test_messages_use_the_shown_name_or_a_neutral_phrase():
    assert visitor_message(S.CALLING_OWNER, "", "", NAMED) == "We are calling John Doe now."
    assert (
        visitor_message(S.CALLING_OWNER, "", "", HIDDEN)
        == "We are calling the person you asked now."
    )
    assert visitor_message(S.OWNER_DECLINED, "", "", HIDDEN).startswith(
        "The person you asked cannot"
    )
    assert visitor_message(S.CALLING_VISITOR, "", "(02) 9037 1234", NAMED) == (
        "John Doe accepted — we are calling you now from (02) 9037 1234."
    )
    for state in S:
        assert "the owner" not in visitor_message(state, "outside_hours", "x", NAMED).lower()


def test_a_web_confirmation_says_how_long_it_may_wait():
    waiting = Audience("John Doe", web_wait=timedelta(minutes=10))
    assert visitor_message(S.QUEUED, "", "", waiting) == (
        "Waiting for John Doe to accept; this can take up to 10 minutes."
    )


def test_a_request_waiting_for_an_owner_on_another_call_says_so_not_in_a_moment():
    busy_named = Audience("John Doe", owner_on_a_call=True)
    busy_hidden = Audience(None, owner_on_a_call=True)
    assert visitor_message(S.QUEUED, "", "", busy_named) == (
        "John Doe is on another call. Your request is waiting; we will call them as soon as "
        "they are free."
    )
    assert visitor_message(S.QUEUED, "", "", busy_hidden).startswith(
        "The person you asked is on another call."
    )
    assert visitor_message(S.QUEUED, "", "", NAMED).endswith("in a moment.")
    # Once the owner's phone rings, the hold no longer matters to the visitor.
    assert visitor_message(S.CALLING_OWNER, "", "", busy_named) == "We are calling John Doe now."


def test_steps_run_from_queued_to_finished():
    assert step_labels(NAMED) == [
        "Queued",
        "Ringing John Doe",
        "Calling you",
        "Connected",
        "Finished",
    ]
    assert [step_of(s) for s in (S.QUEUED, S.CALLING_OWNER, S.CALLING_VISITOR, S.CONNECTED)] == [
        0,
        1,
        2,
        3,
    ]
    assert {step_of(s) for s in (S.COMPLETED, S.REJECTED, S.OWNER_DECLINED, S.CANCELLED)} == {4}


def test_the_number_hint_names_the_countries_with_a_local_example():
    assert number_hint({"AU"}, "AU") == (
        "A mobile or landline number in Australia, e.g. 0412 345 678 or (02) 1234 5678."
    )
    assert "Australia and New Zealand" in number_hint({"AU", "NZ"}, "AU")
    assert visitor_refusal({"AU"}, "AU").endswith("numbers in Australia only.")
