"""Server-sent events: a frame each time a snapshot changes.

Where the snapshot comes from is the caller's: `polled` reads the database for one stream (each
read in its own short session in a worker thread, closed before sleeping, so a viewer never
holds a transaction or a connection open for the life of the stream, on SQLite as on
PostgreSQL); the visitors' status streams read a shared board instead (`status_board`). A frame
is sent only when the snapshot changed; a comment line keeps proxies from closing an idle
stream; the stream ends when the snapshot says it is final, when the thing watched vanished,
or after a bounded time (the browser's EventSource then reconnects by itself after the `retry:`
delay and gets the current state first).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi.sse import format_sse_event

HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class StreamTiming:
    poll_s: float = 0.5
    heartbeat_s: float = 15.0
    max_s: float = 600.0
    retry_ms: int = 3000


def frame(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return format_sse_event(data_str=text, event=event, id=event_id)


Snapshot = dict[str, Any]
NextSnapshot = Callable[[], Awaitable[Snapshot | None]]


def polled(read: Callable[[], Snapshot | None], poll_s: float) -> NextSnapshot:
    """`read` (a blocking function) in a worker thread: at once the first time, then every
    `poll_s`."""
    first = True

    async def next_snapshot() -> Snapshot | None:
        nonlocal first
        if not first:
            await anyio.sleep(poll_s)
        first = False
        return await anyio.to_thread.run_sync(read)

    return next_snapshot


async def watch(
    next_snapshot: NextSnapshot,
    *,
    event: str,
    timing: StreamTiming,
    final: Callable[[Snapshot], bool] = lambda _: False,
    event_id: Callable[[Snapshot], str | None] = lambda _: None,
) -> AsyncIterator[bytes]:
    """Yield an SSE frame whenever the snapshot changes. `next_snapshot` paces the stream: it
    returns within about `timing.poll_s`, changed or not, so heartbeats and the end come on
    time."""
    yield format_sse_event(retry=timing.retry_ms, comment="callnow")
    started = last_sent = time.monotonic()
    previous: Snapshot | None = None
    while True:
        current = await next_snapshot()
        if current is None:
            return
        now = time.monotonic()
        if current != previous:
            yield frame(event, current, event_id(current))
            previous, last_sent = current, now
        if final(current) or now - started >= timing.max_s:
            return
        if now - last_sent >= timing.heartbeat_s:
            yield format_sse_event(comment="heartbeat")
            last_sent = now
