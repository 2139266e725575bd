"""Waking engines when a request is queued, only once it is committed.

Intake marks the session; after the commit an in-process engine is woken at once, and on
PostgreSQL a `NOTIFY` sent inside the same transaction reaches engines in other processes (the
server delivers it at commit, never for a rolled-back request). Its payload names the sending
process, so an engine in the same process can ignore what it was already woken for.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from callnow.store.queue import NOTIFY_CHANNEL

_MARK = "callnow_queued"


_HOST = socket.gethostname()


def sender() -> str:
    """This process, as named in the payload of its NOTIFY (the pid is read at each call:
    a forked worker is a sender of its own)."""
    return f"{_HOST}-{os.getpid()}"


def nobody() -> None:
    return None


def queued(session: Session) -> None:
    """Call when this session stored work an engine should pick up."""
    session.info[_MARK] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :sender)"),
            {"channel": NOTIFY_CHANNEL, "sender": sender()},
        )


def install(sessions: sessionmaker[Session], wake: Callable[[], Callable[[], None]]) -> None:
    """After each commit that queued work, call the waker `wake()` returns at that moment."""

    def after_commit(session: Session) -> None:
        if session.info.pop(_MARK, False):
            wake()()

    event.listen(sessions, "after_commit", after_commit)
