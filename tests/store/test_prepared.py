"""Prepared statements, on SQLite and PostgreSQL: the same rows as the statement run through
SQLAlchemy, values converted by their types, nothing run with a value missing, the driver's
errors raised as SQLAlchemy raises them, and every statement seen where something watches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session

from callnow.store.models import LimitCount, UtcDateTime
from callnow.store.prepared import Prepared

counts: Table = LimitCount.__table__  # type: ignore[assignment]
AT = datetime(2026, 3, 29, 0, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


_INSERT = insert(counts).values(
    rule=bindparam("rule"),
    key=bindparam("key"),
    window_s=bindparam("window_s"),
    slot=bindparam("slot"),
    hits=1,  # a literal of the statement: no value is given for it
    expires_at=bindparam("expires_at", type_=UtcDateTime),
)
# `key` twice, a literal (the 0 of coalesce) and a datetime compared as the database stores it.
_SUM = select(func.coalesce(func.sum(counts.c.hits), 0), func.count()).where(
    counts.c.key == bindparam("key"),
    counts.c.rule != bindparam("key"),
    counts.c.expires_at > bindparam("after", type_=UtcDateTime),
)


@pytest.fixture
def unwatched(monkeypatch: pytest.MonkeyPatch) -> Callable[[Connection], Connection]:
    """With nothing watching, statements run on the driver's cursor: a connection passed through
    this fails the test if a prepared statement goes through SQLAlchemy's execution instead."""

    def refused(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ran through exec_driver_sql")

    def unwatched(connection: Connection) -> Connection:
        monkeypatch.setattr(connection, "exec_driver_sql", refused)
        return connection

    return unwatched


def test_rows_go_in_and_come_out_as_through_sqlalchemy(
    engine: Engine, unwatched: Callable[[Connection], Connection]
) -> None:
    prepared_insert, prepared_sum = Prepared(_INSERT), Prepared(_SUM)
    # Not in UTC: the type converts it as it would through SQLAlchemy.
    eastern = AT.astimezone(timezone(timedelta(hours=-5)))
    with engine.begin() as connection:
        unwatched(connection)
        for slot in range(3):
            values = {"rule": "r", "key": "k", "window_s": 60, "slot": slot}
            prepared_insert.run(connection, {**values, "expires_at": eastern})
        connection.execute(
            _INSERT, {"rule": "r", "key": "k", "window_s": 60, "slot": 3, "expires_at": AT}
        )
        stored = connection.execute(select(counts.c.expires_at)).scalars().all()
        assert stored == [AT] * 4  # as SQLAlchemy stores it: read back equal, one form for all
        for after, expected in ((AT - timedelta(seconds=1), (4, 4)), (AT, (0, 0))):
            given = {"key": "k", "after": after}
            assert tuple(prepared_sum.run(connection, given).one()) == expected
            assert tuple(connection.execute(_SUM, given).one()) == expected
        rows = Prepared(select(counts.c.slot).order_by(counts.c.slot)).run(connection, {})
        assert rows.all() == [(0,), (1,), (2,), (3,)]
        assert rows.first() == (0,) and rows.scalar() == 0
        with pytest.raises(MultipleResultsFound):
            rows.one()
        none = Prepared(select(counts.c.slot).where(counts.c.slot > 9)).run(connection, {})
        assert none.first() is None and none.scalar() is None
        with pytest.raises(NoResultFound):
            none.one()


def test_columns_are_read_as_their_types_say_and_by_name(
    engine: Engine, unwatched: Callable[[Connection], Connection]
) -> None:
    row = {"rule": "r", "key": "k", "window_s": 60, "slot": 0, "expires_at": AT}
    query = select(counts.c.slot.label("at_slot"), counts.c.expires_at)
    with engine.begin() as connection:
        connection.execute(_INSERT, row)
        read = Prepared(query).run(unwatched(connection), {})
        # An aware datetime, as SQLAlchemy reads it (SQLite hands back text).
        assert read.mappings() == [{"at_slot": 0, "expires_at": AT}]
        assert read.all() == [tuple(connection.execute(query).one())]


def test_a_drivers_error_is_raised_as_sqlalchemy_raises_it(
    engine: Engine, unwatched: Callable[[Connection], Connection]
) -> None:
    """Callers catch SQLAlchemy's classes (a unique key taken), whichever way the row went in."""
    row = {"rule": "r", "key": "k", "window_s": 60, "slot": 0, "expires_at": AT}
    with engine.begin() as connection:
        unwatched(connection)
        Prepared(_INSERT).run(connection, row)
        with pytest.raises(IntegrityError):
            Prepared(_INSERT).run(connection, row)


def test_echoed_sql_shows_prepared_statements_too(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(db_url, echo=True)
    try:
        with caplog.at_level(logging.INFO, "sqlalchemy.engine"), engine.begin() as connection:
            Prepared(_SUM).run(connection, {"key": "k", "after": AT})
    finally:
        engine.dispose()
    assert any("limit_counts" in record.getMessage() for record in caplog.records)


def test_a_missing_value_is_named_and_nothing_runs(engine: Engine) -> None:
    ran: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: ran.append(args[2]))
    with engine.begin() as connection, pytest.raises(KeyError, match="'after'"):
        Prepared(_SUM).run(connection, {"key": "k"})
    assert not [sql for sql in ran if "limit_counts" in sql]


def test_its_statements_are_seen_by_the_connections_events(engine: Engine) -> None:
    """Statement counts in tests, and whatever else listens, see prepared statements too."""
    ran: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: ran.append(args[2]))
    with Session(engine) as session, session.begin():
        Prepared(_SUM).run(session.connection(), {"key": "k", "after": AT})
    assert len([sql for sql in ran if "limit_counts" in sql]) == 1


def test_an_expanding_list_is_refused(engine: Engine) -> None:
    listed = select(counts.c.hits).where(counts.c.key.in_(bindparam("keys", expanding=True)))
    with engine.begin() as connection, pytest.raises(ValueError, match="IN list"):
        Prepared(listed).run(connection, {"keys": ["a"]})
