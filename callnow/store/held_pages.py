"""Public pages kept by this process between visits, checked against `profiles.revision`.

Loading a page with its extension, tenant, owner, hours and rules takes three ORM queries,
on every visit and every form post, for settings that change a few times a year. A process
keeps each page it served as a detached copy, a graph no session owns, and a visit reads only
the page's id and revision (one indexed row). When both match, the visit gets the copy merged
into its own session without a query (`Session.merge(load=False)`); otherwise it loads the page
again. The copy itself is never attached to a session, so threads only ever read it.

Database triggers move the revision on every change the page reads (migration 0027): its own
row, its hours, its rules, its extension (but `busy_until`), its tenant and its owner. Whoever
writes, through whichever path, the next visit sees the change: nothing here has to be told.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from callnow.store import profiles
from callnow.store.models import Profile
from callnow.store.prepared import Prepared

# Pages kept per process; a page past this many others since its last visit is loaded again.
HELD_PAGES = 1000

# Every visit and form post reads it: prepared on the table, not the ORM's select of two
# attributes, which went through the ORM's compile state each time.
_pages: Table = Profile.__table__  # type: ignore[assignment]
_REVISION = Prepared(
    select(_pages.c.id, _pages.c.revision).where(_pages.c.callnow_id == bindparam("value"))
)


class _Held(NamedTuple):
    profile_id: int
    revision: int
    # Detached: read by any thread, attached to none. A visit's copy shares its values, lists
    # too (the tenant's countries and prefixes): replace them, never change one in place.
    page: Profile


class HeldPages:
    """The pages this process served, each as of its revision (least recently visited goes)."""

    def __init__(self, size: int = HELD_PAGES) -> None:
        self._size = size
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._lock = threading.Lock()

    def by_callnow_id(self, session: Session, callnow_id: str) -> Profile | None:
        """The page with its extension, tenant, owner, hours and rules, in `session`: as
        `profiles.by_callnow_id` gives it, without its queries while the page is unchanged.

        Call it before changing the page in `session`: merged onto a page the session already
        holds, the kept values replace that object's unsaved changes."""
        key = callnow_id.strip().lower()
        session.flush()  # as the ORM's autoflush would: a pending rename is what the read sees
        current = _REVISION.run(session.connection(), {"value": key}).first()
        if current is None:
            return None
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
        if held is None or (held.profile_id, held.revision) != tuple(current):
            held = self._load(session, current[0])
            if held is None:  # deleted since the first read (PostgreSQL reads each statement anew)
                return None
            self._keep(key, held)
        return session.merge(held.page, load=False)

    def __len__(self) -> int:
        return len(self._held)

    @staticmethod
    def _load(session: Session, profile_id: int) -> _Held | None:
        # A session of its own on the visit's connection, inside its transaction, which closing
        # it leaves alone: the copy is never in the visit's session, whose changes it must not
        # see, nor in any later one.
        with Session(bind=session.connection(), join_transaction_mode="rollback_only") as loader:
            page = profiles.by_id(loader, profile_id)
            if page is None:
                return None
            # The revision ignores the engine's busy hold, so a kept value of it would go stale:
            # left out of the copy, each visit's copy reads it afresh if it reads it at all.
            loader.expire(page.extension, ["busy_until"])
        # The revision the copy was read with: a change between the two reads only makes the
        # next visit load the page again.
        return _Held(page.id, page.revision, page)

    def _keep(self, key: str, held: _Held) -> None:
        with self._lock:
            self._held[key] = held
            self._held.move_to_end(key)
            while len(self._held) > self._size:
                self._held.popitem(last=False)
