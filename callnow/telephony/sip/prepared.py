"""Sending a prepared request (see `events.HangupPrepared`) for a leg this process never had.

The engine that dialled the leg is gone, and with it the dialog; what it stored is the request
exactly as it goes on the wire. It is sent from a socket of its own, not sippy's, a few times
over UDP as a client transaction would retransmit it. The answers go to the Via of the dead
engine and are not awaited: the peer ends its side on the request itself, and a repeat after
it did is answered 481 and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# Sends at 0, 0.5 and 1.5 s: RFC 3261 timer E's first steps, enough for a lost datagram.
RESEND_AFTER_S = (0.5, 1.0)


class _Quiet(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        log.debug("sending a prepared request: %s", exc)


async def send_prepared(message: str, target: tuple[str, int], *, local_host: str) -> None:
    """Send `message` to `target` now and twice more in the background; returns after the
    first send. Raises OSError when it cannot be sent at all."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        _Quiet, local_addr=(local_host, 0), remote_addr=target
    )
    data = message.encode("utf-8")
    try:
        transport.sendto(data)
    except BaseException:
        transport.close()
        raise

    async def resend() -> None:
        try:
            for pause in RESEND_AFTER_S:
                await asyncio.sleep(pause)
                transport.sendto(data)
        finally:
            transport.close()

    task = loop.create_task(resend(), name="prepared request resends")
    _resending.add(task)
    task.add_done_callback(_resending.discard)


# Held so the resends are not garbage-collected mid-way.
_resending: set[asyncio.Task[None]] = set()
