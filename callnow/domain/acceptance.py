"""How a stored decision tells the engine to ask the owner: one map for the whole program.

The dispatcher reads the acceptance mode of a claimed request from it, and the queue derives the
set of claimable decisions from it, so a new outcome cannot be claimable without a mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from callnow.domain.decision import Outcome
from callnow.domain.flow import AcceptanceMode

ACCEPTANCE_BY_OUTCOME: Mapping[Outcome, AcceptanceMode] = MappingProxyType(
    {
        Outcome.CONFIRM: AcceptanceMode.CONFIRM,
        Outcome.ACCEPT: AcceptanceMode.AUTO,
        Outcome.ACCEPTED_ON_WEB: AcceptanceMode.WEB,
    }
)
# Decisions an engine may act on, as stored; `confirm_web` waits for the owner's click first.
CLAIMABLE_DECISIONS: tuple[str, ...] = tuple(outcome.value for outcome in ACCEPTANCE_BY_OUTCOME)


def acceptance_of(decision: str) -> AcceptanceMode:
    """The acceptance mode of a claimable stored decision (KeyError for any other)."""
    return ACCEPTANCE_BY_OUTCOME[Outcome(decision)]
