"""Waking engines when a request is queued, only once it is committed.

Intake marks the session; after the commit an in-process engine is woken at once, and on
PostgreSQL a `NOTIFY` sent inside the same transaction reaches engines in other processes (the
server delivers it at commit, never for a rolled-back request).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

NOTIFY_CHANNEL = "callnow_queue"
_MARK = "callnow_queued"


def nobody() -> None:
    return None


def queued(session: Session) -> None:
    """Call when this session stored work an engine should pick up."""
    session.info[_MARK] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def install(sessions: sessionmaker[Session], wake: Callable[[], Callable[[], None]]) -> None:
    """After each commit that queued work, call the waker `wake()` returns at that moment."""

    def after_commit(session: Session) -> None:
        if session.info.pop(_MARK, False):
            wake()()

    event.listen(sessions, "after_commit", after_commit)
