"""The mail sender: a background task that sends due notices from the outbox.

Each pass takes the owners with due notices; for each, one short transaction reads what they were
sent lately, applies the digest rule (`callnow.domain.notices.plan`) and claims the notices with a
lease. The SMTP conversation runs outside any transaction; each accepted mail is marked sent in
a transaction of its own, only while the claim is still ours. A sender killed mid-conversation
leaves its notices due again when the lease ends; one killed after the server's acceptance and
before the mark sends that mail again with the same Message-ID (at-least-once, idempotent by
Message-ID; see docs/notifications.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.orm import Session, sessionmaker

from callnow.config import Settings
from callnow.domain.notices import DigestRule, Kind, Plan, plan
from callnow.i18n import use_language
from callnow.notify import render, smtp
from callnow.store import mail as store
from callnow.store.db import transaction
from callnow.store.models import utcnow
from callnow.webhooks.retry import RetryPolicy

log = logging.getLogger(__name__)

# Mail is retried for three days: long enough for a mail server's weekend outage.
RETRY = RetryPolicy(
    first_delay=timedelta(seconds=30), max_delay=timedelta(hours=1), give_up_after=timedelta(days=3)
)


@dataclass(frozen=True)
class Batch:
    """What one owner gets now: (message, the outbox ids it carries) in order, under one claim."""

    claim: str
    mails: list[tuple[EmailMessage, list[int], str | None]]
    notices: list[store.Notice]


class MailSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        rand: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._mail = settings.mail
        self._rule = DigestRule(
            burst=self._mail.digest_burst,
            window=timedelta(seconds=self._mail.digest_window_s),
            gap=timedelta(seconds=self._mail.digest_gap_s),
        )
        self._lease = timedelta(seconds=self._mail.lease_s)
        self._clock = clock
        self._rand = rand

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; start it as its own task."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # a database or mail server hiccup must not end the worker
                log.exception("mail sender pass failed")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._mail.poll_interval_s)

    async def run_once(self) -> int:
        """One pass over every owner with due mail; returns how many notices went out."""
        if not self._mail.enabled:
            return 0
        owners = await asyncio.to_thread(self._due_owners)
        done = 0
        for user_id in owners:
            batch = await asyncio.to_thread(self._prepare, user_id)
            if batch is not None:
                done += await asyncio.to_thread(self._send, batch)
        return done

    def _due_owners(self) -> list[int]:
        with transaction(self._sessions) as session:
            return store.due_owners(session, self._clock())

    def _context(self, now: datetime) -> render.MailContext:
        return render.MailContext(
            secret_key=self._settings.web.secret_key,
            base_url=self._settings.web.public_base_url,
            from_address=self._mail.from_address,
            answer_link=timedelta(seconds=self._mail.answer_link_s),
            now=now,
        )

    def _prepare(self, user_id: int) -> Batch | None:
        now = self._clock()
        with transaction(self._sessions) as session:
            notices = store.due_of(session, user_id, now)
            stale = store.no_longer_waiting(session, notices)
            if stale:
                store.drop(session, [n.id for n in stale], now, "the request no longer waited")
                notices = [n for n in notices if n not in stale]
            resets = [n for n in notices if n.kind is Kind.PASSWORD_RESET]
            others = [n for n in notices if n.kind is not Kind.PASSWORD_RESET]
            recent = store.recent_mails(session, user_id, now - self._rule.window)
            decided = plan(
                self._rule,
                sent_in_window=recent.mails,
                due=len(others),
                last_sent_at=recent.last_sent_at,
                now=now,
            )
            if decided is Plan.HOLD:
                others = []
            chosen = resets + others
            if not chosen:
                return None
            claim = store.claim(session, [n.id for n in chosen], now, self._lease)
            if claim is None:
                return None  # another sender took some of them meanwhile
        ctx = self._context(now)
        # One owner's notices: their language, read with them in the same query.
        with use_language(chosen[0].language):
            mails: list[tuple[EmailMessage, list[int], str | None]] = [
                (render.single(ctx, n), [n.id], None) for n in resets
            ]
            if decided is Plan.DIGEST and len(others) > 1:
                message = render.digest(ctx, others)
                mails.append((message, [n.id for n in others], render.digest_local_id(others)))
            else:
                mails += [(render.single(ctx, n), [n.id], None) for n in others]
        return Batch(claim=claim, mails=mails, notices=chosen)

    def _send(self, batch: Batch) -> int:
        marked: set[int] = set()

        def sent(index: int) -> None:
            _message, ids, sent_as = batch.mails[index]
            with transaction(self._sessions) as session:
                store.mark_sent(session, ids, batch.claim, self._clock(), sent_as=sent_as)
            marked.update(ids)

        try:
            smtp.send(self._mail, [m for m, _ids, _as in batch.mails], after_each=sent)
        except smtp.MailError as exc:
            self._failed([n for n in batch.notices if n.id not in marked], batch.claim, exc)
        return len(marked)

    def _failed(self, notices: list[store.Notice], claim: str, exc: smtp.MailError) -> None:
        if not notices:
            return
        now = self._clock()
        oldest = min(n.created_at for n in notices)
        attempts = max(n.attempts for n in notices) + 1
        retry_at = None if exc.permanent else RETRY.next_attempt(oldest, attempts, now, self._rand)
        with transaction(self._sessions) as session:
            store.mark_failed(
                session, [n.id for n in notices], claim, error=str(exc), now=now, retry_at=retry_at
            )
        if retry_at is None:
            log.warning("mail to owner %s given up: %s", notices[0].user_id, exc)
        else:
            log.info("mail to owner %s failed, retrying: %s", notices[0].user_id, exc)
