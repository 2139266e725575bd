"""What the engine needs from the outside world: telephony adapters and a recorder.

The SIP (sippy) and media (rtpengine) adapters implement `Telephony`; the store implements
`CallbackRecorder`. Both are Protocols so the engine is tested against in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from callnow.domain.calls import CallRecord, LegRole
from callnow.domain.flow import Event, PromptKind
from callnow.domain.request_state import RequestState

# Adapters report progress by calling this with the flow's own events: LegRinging, LegAnswered,
# LegFailed, LegEnded, Digit, PromptFinished. Safe to call from any thread (the sippy thread
# included); the engine hops onto its event loop itself. Calls after the callback finished are
# ignored.
EventSink = Callable[[Event], None]


class CallChannel(Protocol):
    """The telephony side of one callback: its two SIP legs and the media session joining them.

    Every method returns once the action is under way, never waiting for the far end: a dial
    returns when the INVITE is sent, and its progress arrives through the `EventSink`. Raising
    means the action could not even be started: a failed dial becomes `LegFailed(role, failed)`,
    a failed prompt or bridge aborts the callback, a failed hang-up or stop is logged.
    """

    async def dial_owner(self, number: str) -> None:
        """INVITE the owner's extension on its internal number."""

    async def dial_requester(self, number: str, caller_id: str) -> None:
        """INVITE the E.164 `number` through the trunk, presenting `caller_id` (E.164)."""

    async def play_prompt(self, kind: PromptKind, text: str) -> None:
        """Play `text` (rendered to audio by the adapter) to the owner leg; report the end of
        playback with `PromptFinished`, unless stopped first."""

    async def stop_prompt(self) -> None:
        """Stop the prompt now playing to the owner leg. Never report `PromptFinished` for a
        stopped prompt: the next prompt may already be playing and would be cut short."""

    async def bridge(self) -> None:
        """Join the owner's and the requester's media."""

    async def hangup(self, role: LegRole, reason: str) -> None:
        """End the leg: CANCEL if it is still ringing, BYE once answered. No `LegEnded` is
        needed for a leg the engine hung up (one that arrives anyway is ignored)."""

    async def close(self) -> None:
        """Release everything the callback still holds (media session, dialogs). Called exactly
        once, after the last command; must not raise for legs already gone."""


class Telephony(Protocol):
    async def open_call(self, request_ref: str, events: EventSink) -> CallChannel:
        """Prepare the resources of one callback (nothing is dialled yet)."""


class CallbackRecorder(Protocol):
    """Where the engine writes what happened; the store layer implements it."""

    async def leg_dialling(
        self, request_ref: str, role: LegRole, destination: str, at: datetime
    ) -> None:
        """Write ahead, just before the leg is dialled. Raise to forbid the dial (for example,
        the (request, role) row already exists because an earlier engine dialled it): the
        engine then reports the leg as failed without dialling."""

    async def record_leg(self, record: CallRecord) -> None:
        """Complete the leg's row with its call record (exactly once per dialled leg, after
        `leg_dialling` for the same request and role)."""

    async def request_state_changed(
        self, request_ref: str, state: RequestState, reason: str, at: datetime
    ) -> None:
        """Move the request to `state`; the moves follow `request_state.check_transition`."""
