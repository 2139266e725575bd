"""Receive rtpengine's DTMF events (`--dtmf-log-dest=HOST:PORT`, one JSON object per datagram).

rtpengine 10.5 sends, at the *end* of each RFC 4733 event, e.g.::

    {"callid":"c1","source_tag":"owner","tags":["owner","visitor"],"type":"DTMF",
     "timestamp":1700000000,"source_ip":"127.0.0.1","event":1,"duration":200,"volume":10}

`duration` is in milliseconds; newer versions add `source_label`. rtpengine writes the call-id
and tags into the JSON without escaping, so use plain call-ids and tags (no quotes, backslashes).
The datagram comes from the daemon's own socket, but anyone on the host can send to our port:
everything is validated, bounded and never trusted to be well-formed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES = 4096
# RFC 4733 section 3.2: events 0-9 are digits, 10 '*', 11 '#', 12-15 'A'-'D', 16 flash.
_EVENT_DIGITS = "0123456789*#ABCD"


def event_to_digit(event: int) -> str | None:
    return _EVENT_DIGITS[event] if 0 <= event < len(_EVENT_DIGITS) else None


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    call_id: str
    source_tag: str
    event: int
    duration_ms: int
    volume: int
    source_ip: str = ""
    source_label: str | None = None
    tags: tuple[str, ...] = ()
    timestamp: int | None = None

    @property
    def digit(self) -> str | None:
        """The key pressed ('0'-'9', '*', '#', 'A'-'D'), or None for other events (flash)."""
        return event_to_digit(self.event)


class MalformedDtmfEvent(ValueError):
    pass


def parse_dtmf_event(data: bytes) -> DtmfEvent:
    """Parse one datagram; raise `MalformedDtmfEvent` if it is not a DTMF event we understand."""
    if len(data) > MAX_DATAGRAM_BYTES:
        raise MalformedDtmfEvent(f"datagram of {len(data)} bytes is too large")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedDtmfEvent(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedDtmfEvent("not a JSON object")
    if obj.get("type", "DTMF") != "DTMF":
        raise MalformedDtmfEvent(f"unexpected type {obj.get('type')!r}")
    tags = obj.get("tags", [])
    return DtmfEvent(
        call_id=_field(obj, "callid", str),
        source_tag=_field(obj, "source_tag", str),
        event=_field(obj, "event", int),
        duration_ms=_field(obj, "duration", int, default=0),
        volume=_field(obj, "volume", int, default=0),
        source_ip=_field(obj, "source_ip", str, default=""),
        source_label=_field(obj, "source_label", str, default=None),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        timestamp=_field(obj, "timestamp", int, default=None),
    )


_REQUIRED = object()


def _field(obj: dict[str, Any], key: str, kind: type, default: Any = _REQUIRED) -> Any:
    value = obj.get(key, _REQUIRED)
    if value is _REQUIRED:
        if default is _REQUIRED:
            raise MalformedDtmfEvent(f"missing {key!r}")
        return default
    # bool is an int in Python and never a valid value here
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedDtmfEvent(f"{key!r} is not {kind.__name__}")
    return value


DtmfCallback = Callable[[DtmfEvent], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: DtmfLogListener) -> None:
        self._listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._listener._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DTMF log socket error: %s", exc)


class DtmfLogListener:
    """Bind `host:port` and call `on_event` for each DTMF event rtpengine reports.

    `on_event` runs in the event loop; it must not block. Malformed datagrams are logged,
    counted in `malformed`, and dropped; an exception in `on_event` is logged, never fatal.
    """

    def __init__(self, host: str, port: int, on_event: DtmfCallback) -> None:
        self.host = host
        self.port = port
        self.on_event = on_event
        self.malformed = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        if self.port == 0:
            self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> DtmfLogListener:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_datagram(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            event = parse_dtmf_event(data)
        except MalformedDtmfEvent as exc:
            self.malformed += 1
            log.warning("malformed DTMF log datagram from %s: %s: %r", addr, exc, data[:120])
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("DTMF event handler failed for %s", event)
