"""Posting the charges of answered legs, as they end and in sweeps for those left unposted."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.orm import Session, sessionmaker

from callnow.billing.ledger import UnrateableLeg, post_charge_with_retry, unposted_leg_ids
from callnow.domain.rating import BillingPolicy

log = structlog.get_logger(__name__)


class ChargePoster:
    """Posting is idempotent: a leg whose charge is being posted by its own call at the same
    time as a sweep still ends with exactly one."""

    def __init__(self, sessions: sessionmaker[Session], policy: BillingPolicy) -> None:
        self._sessions = sessions
        self._policy = policy
        # Legs no deck prices: left for `callnow billing sweep`, not retried every round.
        self._unrateable: set[int] = set()

    def post(self, leg_id: int) -> None:
        try:
            post_charge_with_retry(self._sessions, leg_id, policy=self._policy)
        except UnrateableLeg:
            # Stays unposted until a deck prices it (`callnow billing sweep`); said once here.
            self._unrateable.add(leg_id)
            log.exception("charge_unpriced", leg_id=leg_id)
        except Exception:
            # Left for the next housekeeping round's sweep; never lost, never doubled.
            log.exception("charge_post_failed", leg_id=leg_id)

    def sweep(self, *, limit: int | None, ended_since: datetime | None = None) -> None:
        """Post the charges of answered legs that ended without one (a crash, or a database
        too busy when the leg ended)."""
        with self._sessions() as session:
            unposted = unposted_leg_ids(session, limit=limit, ended_since=ended_since)
        for leg_id in unposted:
            if leg_id not in self._unrateable:
                self.post(leg_id)
