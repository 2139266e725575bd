"""Counting what the engine records: legs by role and disposition, setup and call times.

A wrapper around the engine's `CallbackRecorder`, so the runner and the flow know nothing of
metrics. Counted once the records were accepted (stored or journalled), so a write the runner
tries again is not counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from callnow.domain.calls import LegRecorded, StoreWrite
from callnow.engine.ports import CallbackRecorder
from callnow.metrics import Metrics


class MeteredRecorder:
    def __init__(self, inner: CallbackRecorder, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def write(self, request_ref: str, writes: Sequence[StoreWrite]) -> None:
        await self._inner.write(request_ref, writes)
        for write in writes:
            if isinstance(write, LegRecorded):
                record = write.record
                answered = record.answered_at
                self._metrics.leg_ended(
                    record.role.value,
                    record.disposition.value,
                    None if answered is None else (answered - record.started_at).total_seconds(),
                    None if answered is None else (record.ended_at - answered).total_seconds(),
                )
