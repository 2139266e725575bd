"""One acceptance vocabulary: every claimable decision has a mode, and no other decision does."""

from __future__ import annotations

import pytest

from callnow.domain.acceptance import CLAIMABLE_DECISIONS, acceptance_of
from callnow.domain.decision import Outcome
from callnow.domain.flow import AcceptanceMode


def test_the_claimable_decisions_are_the_ones_with_an_acceptance_mode() -> None:
    assert set(CLAIMABLE_DECISIONS) == {"confirm", "accept", "web"}
    assert acceptance_of("confirm") is AcceptanceMode.CONFIRM
    assert acceptance_of("accept") is AcceptanceMode.AUTO
    assert acceptance_of(Outcome.ACCEPTED_ON_WEB.value) is AcceptanceMode.WEB


@pytest.mark.parametrize("decision", [Outcome.REJECT.value, Outcome.CONFIRM_ON_WEB.value])
def test_a_decision_still_waiting_or_refused_is_not_claimable(decision: str) -> None:
    assert decision not in CLAIMABLE_DECISIONS
    with pytest.raises(KeyError):
        acceptance_of(decision)
