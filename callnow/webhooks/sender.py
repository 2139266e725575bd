"""The webhook sender: a background task that POSTs due deliveries and records the outcome.

It never runs inside a call: the engine and the web only write delivery rows (see
`callnow.store.webhooks`); this worker reads them in short transactions of its own, so a slow
or dead receiver can delay nothing but its own webhooks. Database work runs in a thread so the
event loop it shares (with the web or the engine) is not blocked.

Order: only the oldest pending delivery of each (endpoint, request) is ever due, so event N+1 of a
request is not sent before event N is delivered or given up. Several senders may run against one
database: each delivery is claimed with a lease first (see `webhooks.claim`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from callnow.store import webhooks as store
from callnow.store.db import transaction
from callnow.store.models import utcnow
from callnow.webhooks.retry import RetryPolicy
from callnow.webhooks.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

log = logging.getLogger(__name__)
USER_AGENT = "CallNow-Webhooks/1"


def body_of(payload: dict) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        policy: RetryPolicy | None = None,
        timeout_s: float = 5.0,
        poll_s: float = 1.0,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 50,
        concurrency: int = 10,
        clock: Callable[[], datetime] = utcnow,
        rand: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sessions = sessions
        self._policy = policy or RetryPolicy()
        self._timeout = httpx.Timeout(timeout_s)
        self._poll_s = poll_s
        self._lease = lease
        self._batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._rand = rand
        self._transport = transport

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set. Start it as its own task:
        `asyncio.create_task(WebhookSender(sessions).run(stop))`."""
        async with self._client() as client:
            while not stop.is_set():
                try:
                    sent = await self.run_once(client)
                except Exception:  # a database hiccup must not end the worker
                    log.exception("webhook sender pass failed")
                    sent = 0
                if sent:
                    continue  # the next event of the same requests may be due right away
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._poll_s)

    def _client(self) -> httpx.AsyncClient:
        # No redirects: a 3xx is a failed attempt, never a hop to an address we did not check.
        return httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            transport=self._transport,
            headers={"User-Agent": USER_AGENT},
        )

    async def run_once(self, client: httpx.AsyncClient | None = None) -> int:
        """Claim what is due now and attempt each once; returns how many were attempted."""
        claimed = await asyncio.to_thread(self._claim_due)
        if not claimed:
            return 0
        if client is None:
            async with self._client() as own:
                await asyncio.gather(*(self._attempt(own, item) for item in claimed))
        else:
            await asyncio.gather(*(self._attempt(client, item) for item in claimed))
        return len(claimed)

    def _claim_due(self) -> list[store.Due]:
        now = self._clock()
        with transaction(self._sessions) as session:
            items = store.due(session, now, self._batch)
            return [item for item in items if store.claim(session, item, now, self._lease)]

    async def _attempt(self, client: httpx.AsyncClient, item: store.Due) -> None:
        if not item.endpoint_active:
            await asyncio.to_thread(self._failed, item, None, "the endpoint was removed", True)
            return
        body = body_of(item.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(item.secret, body),
            DELIVERY_HEADER: item.delivery_id,
            TIMESTAMP_HEADER: str(int(self._clock().timestamp())),
        }
        status: int | None = None
        error = ""
        async with self._limit:
            try:
                response = await client.post(item.url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        if status is not None and 200 <= status < 300:
            await asyncio.to_thread(self._delivered, item, status)
            return
        await asyncio.to_thread(self._failed, item, status, error or f"HTTP {status}", False)

    def _delivered(self, item: store.Due, status: int) -> None:
        with transaction(self._sessions) as session:
            store.record_delivered(session, item, status, self._clock())

    def _failed(self, item: store.Due, status: int | None, error: str, give_up: bool) -> None:
        now = self._clock()
        retry_at = (
            None
            if give_up
            else self._policy.next_attempt(item.created_at, item.attempts + 1, now, self._rand)
        )
        with transaction(self._sessions) as session:
            store.record_failed(
                session, item, status=status, error=error, now=now, retry_at=retry_at
            )
        if retry_at is None:
            log.warning("webhook %s given up: %s", item.delivery_id, error)
