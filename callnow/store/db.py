"""Database engine, sessions and migrations for SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, exc, inspect, make_url, text
from sqlalchemy.orm import Mapper, RelationshipProperty, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from callnow.store.sqlite_writer import one_writer_connection

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 1.0
# How long a thread waits for a pooled connection before its request fails. Pools are sized so
# that this only happens when something else is wrong; a bounded wait turns it into an error
# instead of a freeze.
POOL_TIMEOUT_S = 10.0


def make_engine(url: str, *, connections: int = 15, urgent: bool = False) -> Engine:
    """An engine with a fixed pool of `connections` (no overflow, bounded wait).

    `urgent` marks the call engine's own pool: on SQLite its writers go before the web's.
    """
    pooling: dict[str, Any] = {
        "pool_size": connections,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_S,
    }
    if url.startswith("sqlite"):
        database = make_url(url).database or ""
        path = str(Path(database).resolve()) if database and database != ":memory:" else database
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_S,
                "factory": one_writer_connection(path, SQLITE_BUSY_TIMEOUT_S, urgent=urgent),
            },
            **(pooling if path != ":memory:" and path else {}),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the web read while the engine writes; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_engine(url, **pooling)
    ping_when_idle(engine, PING_AFTER_IDLE_S)
    return engine


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before use only if it sat idle for `idle_s` or more.

    `pool_pre_ping` pings at every checkout: on PostgreSQL a round trip per transaction
    (docs/decisions/0011-ping-only-idle-connections.md). A connection returned moments ago is
    alive unless the server went away in between; then the transaction fails, SQLAlchemy sees
    the disconnect and replaces the whole pool, as it would for a server lost mid-transaction.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool drops this connection and checks out another (a new one if need be).
            raise exc.DisconnectionError() from error


def ping(session: Session) -> None:
    """Raise if the database cannot answer a trivial query."""
    session.execute(text("SELECT 1"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_transaction_end", _drop_after_commit)
    event.listen(factory, "before_attach", _refuse_shared)
    return factory


# Set in the `__dict__` of an ORM object that `share` marked.
_SHARED = "_callnow_shared"
_guarded: set[type] = set()
_guarding = threading.Lock()


class SharedObjectError(exc.InvalidRequestError):
    """An object that threads share read-only (`share`) was changed or given to a session."""


def guard_shared(*classes: type) -> None:
    """Make objects of these mapped classes refuse changes once `share` marks them: set them up
    before any is shared (at start-up), as listeners are not added while threads use them."""
    with _guarding:
        for cls in classes:
            if cls in _guarded:
                continue
            mapper: Mapper[Any] = inspect(cls)
            for prop in mapper.attrs:
                attribute = getattr(cls, prop.key)
                event.listen(attribute, "set", _refuse_change)
                if isinstance(prop, RelationshipProperty) and prop.uselist:
                    event.listen(attribute, "append", _refuse_change)
                    event.listen(attribute, "remove", _refuse_change)
            _guarded.add(cls)


def share(objects: Iterable[object]) -> None:
    """Mark loaded ORM objects that several threads read at once, in no session (the public
    pages a process keeps). A change to one raises (for the classes `guard_shared` set up; a
    value changed in place, such as a list column, is not seen), and a session of
    `make_session_factory` refuses one, also through a relationship's cascade: copy one into a
    session with `Session.merge` instead."""
    for obj in objects:
        if type(obj) not in _guarded:
            raise SharedObjectError(f"{type(obj).__name__} is not guarded: call guard_shared")
        obj.__dict__[_SHARED] = True


def _refuse_change(target: object, *_: object) -> None:
    """Listens to an attribute's set, append and remove."""
    if _SHARED in target.__dict__:
        raise SharedObjectError(
            f"this {type(target).__name__} is shared between threads and read-only: "
            "use Session.merge for a copy of its own"
        )


def _refuse_shared(session: Session, instance: object) -> None:
    _refuse_change(instance)


_AFTER_COMMIT = "callnow.after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed; drop it if the transaction
    ends any other way (rolled back, or the session closed). For what must say no more than is
    stored (a log line that a request came in), and need not run while the transaction holds
    SQLite's write turn. A savepoint rolled back keeps what was queued inside it. Sessions of
    `make_session_factory` only. It runs in the context it was queued in (its log fields), also
    when the commit runs elsewhere."""
    session.info.setdefault(_AFTER_COMMIT, []).append(partial(copy_context().run, action))


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        try:
            action()
        except Exception:  # what is committed stays so: a failed action is not a failed commit
            log.exception("an action after a commit failed")


def _drop_after_commit(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction: committed (and run) or not at all
        session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed whole or rolled back whole."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (safe to run on every start)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


@dataclass(frozen=True)
class SchemaRevisions:
    current: str | None  # None: no migration applied yet
    head: str  # the newest migration this code has
    known: bool  # `current` is one of this code's migrations (False: a newer CallNow's)


def schema_revisions(url: str) -> SchemaRevisions:
    """Where the database's schema is, against the migrations this code has.

    Reads only: a missing SQLite file is reported as empty, not created.
    """
    scripts = ScriptDirectory.from_config(alembic_config(url))
    head = scripts.get_current_head()
    assert head is not None, "the migrations directory has no head"
    current = None
    if not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).is_file():
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        finally:
            engine.dispose()
    known = current is None or any(
        script.revision == current for script in scripts.walk_revisions()
    )
    return SchemaRevisions(current, head, known)


def pool_use(engine: Engine) -> Callable[[], tuple[int, int]]:
    """(connections in use, pool size) of an engine's pool, read at each metrics scrape."""

    def read() -> tuple[int, int]:
        pool = engine.pool
        in_use = getattr(pool, "checkedout", lambda: 0)()
        size = getattr(pool, "size", lambda: 0)()
        return int(in_use), int(size)

    return read
