"""In-memory stand-ins for the telephony adapters and the store, for testing the engine shell."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callnow.domain.calls import (
    CallRecord,
    LegAnsweredAt,
    LegDialling,
    LegHangupPrepared,
    LegRecorded,
    LegRole,
    StateChanged,
    StoreWrite,
)
from callnow.domain.flow import Event, PromptFinished, PromptKind, RequestFacts
from callnow.domain.request_state import RequestState
from callnow.engine.ports import EventSink

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)

Call = tuple[Any, ...]


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeChannel:
    """Notes every action; the test plays the phones by emitting events through `emit`."""

    def __init__(
        self,
        sink: EventSink,
        *,
        failures: dict[str, Exception],
        stalls: set[str],
        prompts_finish_at_once: bool,
        emits: dict[str, list[Event | LegHangupPrepared]] | None = None,
    ) -> None:
        self._sink = sink
        self._failures = failures
        self._stalls = stalls
        self._emits = emits or {}
        self._prompts_finish_at_once = prompts_finish_at_once
        self.calls: list[Call] = []
        self.closed = False

    async def dial_owner(self, number: str) -> None:
        await self._act("dial_owner", number)

    async def dial_visitor(self, number: str, caller_id: str) -> None:
        await self._act("dial_requester", number, caller_id)

    async def play_prompt(self, kind: PromptKind, text: str, *, language: str = "en") -> None:
        await self._act("play_prompt", kind)
        if self._prompts_finish_at_once:
            self.emit(PromptFinished())

    async def stop_prompt(self) -> None:
        await self._act("stop_prompt")

    async def bridge(self) -> None:
        await self._act("bridge")

    async def hangup(self, role: LegRole, reason: str) -> None:
        await self._act("hangup", role, reason)

    async def close(self) -> None:
        await self._act("close")
        self.closed = True

    def emit(self, *events: Event | LegHangupPrepared) -> None:
        for event in events:
            self._sink(event)

    async def wait_for(self, *call: Any, timeout: float = 2.0) -> None:
        """Wait until the engine has made `call`, e.g. ("bridge",)."""
        async with asyncio.timeout(timeout):
            while tuple(call) not in self.calls:
                await asyncio.sleep(0.001)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    async def _act(self, *call: Any) -> None:
        self.calls.append(call)
        self.emit(*self._emits.get(call[0], ()))
        if call[0] in self._stalls:
            await asyncio.Event().wait()  # an adapter stuck for good
        if call[0] in self._failures:
            raise self._failures[call[0]]


@dataclass
class FakeTelephony:
    # Action name (e.g. "bridge") -> the exception the channel raises for it.
    failures: dict[str, Exception] = field(default_factory=dict)
    # Action names whose call never returns.
    stalls: set[str] = field(default_factory=set)
    prompts_finish_at_once: bool = False
    # Action name -> what the channel reports while making it (e.g. a dial's CANCEL).
    emits: dict[str, list[Event | LegHangupPrepared]] = field(default_factory=dict)
    channels: list[FakeChannel] = field(default_factory=list)

    async def open_call(self, facts: RequestFacts, events: EventSink) -> FakeChannel:
        channel = FakeChannel(
            events,
            failures=self.failures,
            stalls=self.stalls,
            prompts_finish_at_once=self.prompts_finish_at_once,
            emits=self.emits,
        )
        self.channels.append(channel)
        return channel


@dataclass
class FakeRecorder:
    dialling: list[tuple[LegRole, str]] = field(default_factory=list)
    records: list[CallRecord] = field(default_factory=list)
    states: list[tuple[RequestState, str]] = field(default_factory=list)
    answers: list[LegAnsweredAt] = field(default_factory=list)
    fail_writes: bool = False
    # Roles whose write-ahead row already exists (an earlier engine dialled them).
    already_dialled: set[LegRole] = field(default_factory=set)
    # Each unit written, in order, as the engine handed it over.
    batches: list[list[StoreWrite]] = field(default_factory=list)
    # When given, each write waits for it: a slow database.
    held_until: asyncio.Event | None = None

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        if self.held_until is not None:
            await self.held_until.wait()
        # All or nothing, as the store's transaction.
        if self.fail_writes:
            raise ConnectionError("database is gone")
        if any(isinstance(w, LegDialling) and w.role in self.already_dialled for w in writes):
            raise ConnectionError("cannot note the leg")
        self.batches.append(list(writes))
        for write in writes:
            match write:
                case LegDialling(role=role, destination=destination):
                    self.dialling.append((role, destination))
                case LegAnsweredAt():
                    self.answers.append(write)
                case LegRecorded(record=record):
                    self.records.append(record)
                case StateChanged(state=state, reason=reason):
                    self.states.append((state, reason))

    def record_of(self, role: LegRole) -> CallRecord:
        (record,) = [r for r in self.records if r.role is role]
        return record
