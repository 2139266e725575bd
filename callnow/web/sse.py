"""Server-sent events built by polling the database.

Each poll opens its own short session in a worker thread and closes it before sleeping, so a
viewer never holds a transaction (or a connection) open for the life of the stream, on SQLite as
on PostgreSQL. A frame is sent only when the snapshot changed; a comment line keeps proxies from
closing an idle stream; the stream ends when the snapshot says it is final, when the thing
watched vanished, or after a bounded time (the browser's EventSource then reconnects by itself
after the `retry:` delay and gets the current state first).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
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


async def watch(
    snapshot: Callable[[], dict[str, Any] | None],
    *,
    event: str,
    timing: StreamTiming,
    final: Callable[[dict[str, Any]], bool] = lambda _: False,
    event_id: Callable[[dict[str, Any]], str | None] = lambda _: None,
) -> AsyncIterator[bytes]:
    """Poll `snapshot` (a blocking function) and yield an SSE frame whenever it changes."""
    yield format_sse_event(retry=timing.retry_ms, comment="callnow")
    started = last_sent = time.monotonic()
    previous: dict[str, Any] | None = None
    while True:
        current = await anyio.to_thread.run_sync(snapshot)
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
        await anyio.sleep(timing.poll_s)
