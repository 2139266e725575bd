import itertools

import pytest

from callnow.domain.request_state import (
    TERMINAL,
    VISITOR_TEXT,
    IllegalTransition,
    RequestState,
    check_transition,
    states_before,
)

S = RequestState


@pytest.mark.parametrize(
    "path",
    [
        [S.RECEIVED, S.QUEUED, S.CALLING_OWNER, S.CALLING_VISITOR, S.CONNECTED, S.COMPLETED],
        [S.RECEIVED, S.REJECTED],
        [S.RECEIVED, S.QUEUED, S.CALLING_OWNER, S.OWNER_DECLINED],
        [S.RECEIVED, S.QUEUED, S.CANCELLED],
        [S.RECEIVED, S.QUEUED, S.CALLING_OWNER, S.CALLING_VISITOR, S.VISITOR_UNREACHABLE],
        [S.RECEIVED, S.QUEUED, S.CALLING_OWNER, S.INTERRUPTED],
    ],
)
def test_the_paths_a_request_may_take(path):
    for current, new in itertools.pairwise(path):
        check_transition(current, new)
    assert path[-1] in TERMINAL


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_nothing_leaves_a_terminal_state(terminal):
    for state in S:
        with pytest.raises(IllegalTransition):
            check_transition(terminal, state)


def test_a_visitor_is_never_called_before_the_owner():
    with pytest.raises(IllegalTransition):
        check_transition(S.QUEUED, S.CALLING_VISITOR)


def test_once_the_visitor_may_have_been_called_the_request_cannot_be_cancelled():
    with pytest.raises(IllegalTransition):
        check_transition(S.CALLING_VISITOR, S.CANCELLED)


def test_every_state_has_words_for_the_visitor():
    assert set(VISITOR_TEXT) == set(S)


@pytest.mark.parametrize("new", list(S))
def test_the_states_before_a_state_are_exactly_those_that_may_move_to_it(new):
    for current in S:
        if current in states_before(new):
            check_transition(current, new)
        else:
            with pytest.raises(IllegalTransition):
                check_transition(current, new)
