"""The engine as it runs inside `callnow serve`: telephony, callback engine, dispatcher, wake-ups.

When it shares the web's process (`engine.process = shared`) the web wakes the dispatcher
directly after a commit; as serve's child on SQLite, through a pipe (`engine/child.py`). With
PostgreSQL the web also sends `NOTIFY callnow_queue`, and every engine process LISTENs, so web
workers and engines may be separate processes on separate hosts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing.policy import policy_from
from callnow.config import Settings
from callnow.domain.flow import FlowLimits
from callnow.engine.charges import ChargePoster
from callnow.engine.dispatcher import Dispatcher, default_engine_id
from callnow.engine.live import LiveTelephony, flow_limits
from callnow.engine.metered import MeteredRecorder
from callnow.engine.record_journal import RecordJournal
from callnow.engine.record_stream import RecordStream
from callnow.engine.runner import CallbackEngine
from callnow.metrics import Metrics
from callnow.notify.sender import MailSender
from callnow.store import page_alerts
from callnow.store import queue as queue_store
from callnow.store import webhooks as webhook_outbox
from callnow.store.queue import NOTIFY_CHANNEL
from callnow.store.recorder import StoreRecorder
from callnow.store.web_confirmation import expire_web_confirmations
from callnow.webhooks.sender import WebhookSender

log = logging.getLogger(__name__)
# Under settings.data_dir: the engines' records that did not reach the database yet.
JOURNAL_DIR = "engine-journal"


class QueueListener:
    """LISTEN on PostgreSQL in a thread of its own and wake the dispatcher on each NOTIFY.

    A NOTIFY whose payload is `ignore_sender` came from this very process, whose web already
    woke the dispatcher directly: waking it again would only cost an empty claim.
    """

    def __init__(
        self, database_url: str, wake: Callable[[], None], *, ignore_sender: str | None = None
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._wake = wake
        self._ignore_sender = ignore_sender
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=1.0, stop_after=1):
                            if note.payload != self._ignore_sender:
                                self._wake()
            except Exception:
                # Polling still finds the work; try to listen again shortly.
                log.exception("queue listener lost its connection")
                self._stop.wait(2.0)


@dataclass
class EngineRuntime:
    telephony: LiveTelephony
    engine: CallbackEngine
    dispatcher: Dispatcher
    listener: QueueListener | None
    webhooks: asyncio.Task[None]
    webhooks_stop: asyncio.Event
    records: RecordStream
    mail: asyncio.Task[None] | None = None
    stopped: bool = False

    @classmethod
    async def start(
        cls,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        limits: FlowLimits | None = None,
        woken_in_process_by: str | None = None,
        metrics: Metrics | None = None,
    ) -> EngineRuntime:
        """`woken_in_process_by`: the NOTIFY payload of a web in this process that wakes the
        dispatcher itself after each commit (see `store.wakeup`)."""
        telephony = await LiveTelephony.start(settings)
        limits = limits or flow_limits(settings.sip)  # the [sip] timings, for both users
        loop = asyncio.get_running_loop()
        charges = ChargePoster(sessions, policy_from(settings.billing))

        def post_charge(leg_id: int) -> None:
            loop.run_in_executor(None, charges.post, leg_id)

        recorder = StoreRecorder(sessions, on_answered_leg_recorded=post_charge)
        engine_id = settings.engine.engine_id or default_engine_id()
        # Records that cannot be stored at once wait in a journal under data_dir, not in memory.
        records = RecordStream(recorder, RecordJournal(settings.data_dir / JOURNAL_DIR, engine_id))
        recorded = records if metrics is None else MeteredRecorder(records, metrics)
        engine = CallbackEngine(telephony, recorded, limits=limits)
        dispatcher = Dispatcher(
            sessions,
            engine,
            settings,
            limits=limits,
            holding=records.pending_request_ids,
            end_abandoned=telephony.end_abandoned,
            metrics=metrics,
            charges=charges,
        )
        if metrics is not None:
            _watch(metrics, sessions, telephony, settings)
        try:
            # What a crashed engine could not store lands before any request is judged.
            await records.start()
        except BaseException:
            await telephony.stop()
            raise
        # Requests held for the owner's click in the portal end after the timeout.
        dispatcher.housekeeping_hooks.append(expire_web_confirmations)
        # Owners hear of a flood that switched their page to CAPTCHA (through the mail outbox).
        dispatcher.housekeeping_hooks.append(page_alerts.tell_owners)
        listener = None
        if settings.effective_database_url.startswith("postgresql"):
            listener = QueueListener(
                settings.effective_database_url,
                dispatcher.wake,
                ignore_sender=woken_in_process_by,
            )
            listener.start()
        try:
            await dispatcher.start()
        except BaseException:
            if listener:
                listener.stop()
            await records.stop(within_s=0)
            await telephony.stop()
            raise
        # Status webhooks go out from their own task: a slow receiver never holds up a call.
        webhooks_stop = asyncio.Event()
        webhooks = asyncio.create_task(WebhookSender(sessions).run(webhooks_stop), name="webhooks")
        # Owner e-mail goes out the same way, from the mail outbox (stopped by the same event).
        mail = asyncio.create_task(MailSender(sessions, settings).run(webhooks_stop), name="mail")
        log.info("engine %s running; SIP on %s:%s", dispatcher.engine_id, *telephony.sip_address)
        return cls(telephony, engine, dispatcher, listener, webhooks, webhooks_stop, records, mail)

    @property
    def status(self) -> Literal["running", "draining", "stopped"]:
        if self.dispatcher.draining:
            return "draining"
        return "running" if self.dispatcher.claiming else "stopped"

    async def drain(self, within_s: float, hurry: asyncio.Event | None = None) -> None:
        """Stop claiming, let calls in progress end (see `Dispatcher.drain`), then stop."""
        await self.dispatcher.drain(within_s, hurry)
        await self.stop()

    async def stop(self) -> None:
        if self.stopped:  # a drain already stopped it; the lifespan's end stops it again
            return
        self.stopped = True
        self.webhooks_stop.set()
        await self.webhooks
        if self.mail is not None:
            await self.mail
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
        await self.dispatcher.stop()
        await self.records.stop()
        await self.telephony.stop()


def _watch(
    metrics: Metrics,
    sessions: sessionmaker[Session],
    telephony: LiveTelephony,
    settings: Settings,
) -> None:
    """What the engine's process shows at each scrape: the queue, the webhook outbox, the
    trunks' registrations, and the round trips of rtpengine's control protocol."""

    def depth() -> tuple[int, float]:
        with sessions() as session:
            return queue_store.depth(session, datetime.now(UTC))

    def owners_held() -> int:
        with sessions() as session:
            return queue_store.owners_held(session, datetime.now(UTC))

    def webhook_backlog() -> int:
        with sessions() as session:
            return webhook_outbox.backlog(session)

    metrics.watch_queue(depth)
    metrics.watch_owners_held(owners_held)
    metrics.watch_outbox("webhook", webhook_backlog)
    metrics.watch_trunk_registrations(
        [trunk.name for trunk in settings.all_trunks if trunk.registration],
        lambda: [(r.name, r.registered) for r in telephony.trunk_registrations],
    )
    telephony.rtpengine.observe = metrics.ng_request
