"""Public pages kept by this process between visits, checked against `profiles.revision`.

Loading a page with its extension, tenant, owner, hours and rules takes three ORM queries,
on every visit and every form post, for settings that change a few times a year. A process
keeps each page it served as a detached copy, a graph no session owns, and a visit reads only
the page's id and revision (one indexed row). When both match, the visit reads that copy itself;
otherwise it loads the page again. Visits only read a page, so they share the copy without
copying it into their session (`Session.merge` of the graph cost a form post 6 % of its
instructions). The copy is marked shared (`db.share`): a session refuses it, so a visit that
wrongly tried to add it, or to link a new row to it, fails at once instead of changing what other
threads read.

Database triggers move the revision on every change the page reads (migration 0027): its own
row, its hours, its rules, its extension (but `busy_until`), its tenant and its owner. Whoever
writes, through whichever path, the next visit sees the change: nothing here has to be told.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Table, bindparam, inspect, select
from sqlalchemy.orm import Session

from callnow.store import db, profiles
from callnow.store.models import AvailabilityWindow, Extension, Profile, RuleRow, Tenant, User
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
    # Detached, with its extension, tenant, owner, hours and rules: read by any thread at once,
    # attached to none, changed by none (`db.share`).
    page: Profile


class HeldPages:
    """The pages this process served, each as of its revision (least recently visited goes)."""

    def __init__(self, size: int = HELD_PAGES) -> None:
        # Every class of a kept page's graph refuses changes to a kept copy.
        db.guard_shared(Profile, Extension, Tenant, User, AvailabilityWindow, RuleRow)
        self._size = size
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._lock = threading.Lock()

    def by_callnow_id(self, session: Session, callnow_id: str) -> Profile | None:
        """The page with its extension, tenant, owner, hours and rules, as of `session`'s
        transaction: what `profiles.by_callnow_id` reads, without its queries while the page is
        unchanged. Read it; never change it or put it in a session (both refuse). Its
        extension's `busy_until` is not kept: read that from the database.

        The page is in no session: to change it, load it (`profiles.by_id`)."""
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
        return held.page

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
            # left out of the copy, where reading it fails (no session) instead of answering old.
            loader.expire(page.extension, ["busy_until"])
        db.share(_graph(page))
        # The revision the copy was read with: a change between the two reads only makes the
        # next visit load the page again.
        return _Held(page.id, page.revision, page)

    def _keep(self, key: str, held: _Held) -> None:
        with self._lock:
            self._held[key] = held
            self._held.move_to_end(key)
            while len(self._held) > self._size:
                self._held.popitem(last=False)


def _graph(obj: object) -> Iterator[object]:
    """`obj` and every object loaded through its relationships, each once."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        state = inspect(current)
        for relationship in state.mapper.relationships:
            value = state.dict.get(relationship.key)
            if isinstance(value, list):
                stack.extend(value)
            elif value is not None:
                stack.append(value)
