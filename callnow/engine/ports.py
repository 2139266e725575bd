"""What the engine needs from the outside world: telephony adapters and a recorder.

The SIP (sippy) and media (rtpengine) adapters implement `Telephony`; the store implements
`CallbackRecorder`. Both are Protocols so the engine is tested against in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from callnow.domain.calls import LegHangupPrepared, LegRole, StoreWrite
from callnow.domain.flow import Event, PromptKind, RequestFacts

# Adapters report progress by calling this with the flow's own events: LegRinging, LegAnswered,
# LegFailed, OwnerDiverted, LegEnded, Digit, PromptFinished; and, for the store only,
# LegHangupPrepared (how to end a leg should the engine die). Safe to call from any thread
# (the sippy thread included); the engine hops onto its event loop itself. Calls after the
# callback finished are ignored.
EventSink = Callable[[Event | LegHangupPrepared], None]


class CallChannel(Protocol):
    """The telephony side of one callback: its two SIP legs and the media session joining them.

    Every method returns once the action is under way, never waiting for the far end: a dial
    returns when the INVITE is sent, and its progress arrives through the `EventSink`. Raising
    means the action could not even be started: a failed dial becomes `LegFailed(role, failed)`,
    a failed prompt or bridge aborts the callback, a failed hang-up or stop is logged.
    """

    async def dial_owner(self, number: str) -> None:
        """INVITE the owner's extension on its internal number."""

    async def dial_visitor(self, number: str, caller_id: str) -> None:
        """INVITE the E.164 `number` through the trunk, presenting `caller_id` (E.164)."""

    async def play_prompt(self, kind: PromptKind, text: str, *, language: str = "en") -> None:
        """Play `text` (rendered to audio by the adapter, with a voice of `language`, the
        owner's) to the owner leg; report the end of playback with `PromptFinished`, unless
        stopped first."""

    async def stop_prompt(self) -> None:
        """Stop the prompt now playing to the owner leg. Never report `PromptFinished` for a
        stopped prompt: the next prompt may already be playing and would be cut short."""

    async def bridge(self) -> None:
        """Join the owner's and the visitor's media."""

    async def hangup(self, role: LegRole, reason: str) -> None:
        """End the leg: CANCEL if it is still ringing, BYE once answered. No `LegEnded` is
        needed for a leg the engine hung up (one that arrives anyway is ignored)."""

    async def close(self) -> None:
        """Release everything the callback still holds (media session, dialogs). Called exactly
        once, after the last command; must not raise for legs already gone."""


class Telephony(Protocol):
    async def open_call(self, facts: RequestFacts, events: EventSink) -> CallChannel:
        """Prepare the resources of one callback (nothing is dialled yet). `facts` say who is
        asking, for the owner's display; raise if they cannot be put on the wire safely."""


class CallbackRecorder(Protocol):
    """Where the engine writes what happened; the store layer implements it."""

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        """Apply `writes` in order as one unit: all of them or, when this raises, none.

        The engine gathers what one event produced (a state change and the write-ahead row of
        the leg it dials next, or a leg's record and the request's final state) into one call,
        so each step of a callback costs one transaction. Raise to forbid a dial: for example,
        the (request, role) leg row already exists because an earlier engine dialled it; the
        engine then reports that leg as failed without dialling.
        """
