"""Hot statements compiled once per database and run on the driver's own cursor.

`Connection.execute` of a Core statement finds the statement in the compiled cache, builds its
parameters bind by bind and sets up a compiled execution each time: for the limit counters'
statements, which have dozens of parameters and run on every public form post, that cost about
as much as the database's own work. A `Prepared` statement is compiled once per dialect; each run
only puts its values in order, converts those whose type needs it (an aware datetime into
SQLite's text) and runs the SQL on a cursor of the connection's own driver connection, so it
stays in the connection's transaction. Its rows come back fetched, as plain tuples: SQLAlchemy's
result object, set up for each statement, cost a form post more than the statements' SQLite work.

Where something watches the connection's statements (a `before_cursor_execute` or
`after_cursor_execute` listener, as the tests that count statements add, or SQL echo), the
statement goes through `Connection.exec_driver_sql` instead, so the listeners see it like any
other. An error of the driver is raised as SQLAlchemy raises it (`IntegrityError` …), and a lost
connection is handled as SQLAlchemy handles it.

Each result column's type is applied as SQLAlchemy would (a datetime read back aware); columns
are told by position, or by name through `Rows.mappings`. Expanding IN lists are not supported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_REQUIRED = object()  # a parameter the statement has no value for: each run must give one


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Positional drivers (SQLite): values in placeholder order. Named drivers (psycopg): by name.
    positional: bool
    names: tuple[str, ...]  # each parameter's name in the SQL, in order
    # Each parameter's key (the `bindparam`'s, which values are given under) and its value when
    # none is given: the statement's own (a literal), or _REQUIRED.
    given_as: tuple[tuple[str, Any], ...]
    # The parameters whose type converts their value for this database, by position.
    converts: tuple[tuple[int, Callable[[Any], Any]], ...]
    keys: tuple[str, ...]  # the names of the result's columns
    # Each result column's conversion for this database (a datetime read back aware); None where
    # no column has one.
    results: tuple[Callable[[Any], Any] | None, ...] | None

    def values(self, given: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        ordered = [given.get(key, fixed) for key, fixed in self.given_as]
        if _REQUIRED in ordered:
            missing = next(
                key
                for (key, _), value in zip(self.given_as, ordered, strict=True)
                if value is _REQUIRED
            )
            raise KeyError(f"no value for the statement's parameter {missing!r}")
        for position, convert in self.converts:
            if ordered[position] is not None:
                ordered[position] = convert(ordered[position])
        if self.positional:
            return tuple(ordered)
        return dict(zip(self.names, ordered, strict=True))

    def rows(self, fetched: list[tuple[Any, ...]]) -> Rows:
        if self.results is not None:
            converts = self.results
            fetched = [
                tuple(value if convert is None else convert(value) for convert, value in pairs)
                for pairs in (zip(converts, row, strict=True) for row in fetched)
            ]
        return Rows(fetched, self.keys)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.escaped_bind_names:
        raise ValueError("a prepared statement's parameter names must need no escaping")
    by_name: dict[str, tuple[str, Any, Callable[[Any], Any] | None]] = {}
    for bind, name in compiled.bind_names.items():
        if bind.expanding:
            raise ValueError("a prepared statement cannot expand an IN list")
        fixed = _REQUIRED if bind.required else bind.effective_value
        by_name[name] = (bind.key, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect))
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup or by_name)
    parameters = [by_name[name] for name in names]
    converts = tuple(
        (position, convert)
        for position, (_, _, convert) in enumerate(parameters)
        if convert is not None
    )
    # A SELECT's columns, or an INSERT's or UPDATE's RETURNING columns (none without it).
    columns = list(getattr(statement, "exported_columns", ()))
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Compiled(
        compiled.string,
        positional,
        names,
        tuple((key, fixed) for key, fixed, _ in parameters),
        converts,
        tuple(column.key for column in columns),
        results if any(results) else None,
    )


@dataclass(frozen=True)
class Rows:
    """A prepared statement's rows, all fetched, each a tuple."""

    rows: list[tuple[Any, ...]]
    keys: tuple[str, ...] = ()  # the names of the columns

    def mappings(self) -> list[dict[str, Any]]:
        """Each row as a dict by column name."""
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]

    def all(self) -> list[tuple[Any, ...]]:
        return self.rows

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def one(self) -> tuple[Any, ...]:
        if not self.rows:
            raise NoResultFound("the statement returned no row")
        if len(self.rows) > 1:
            raise MultipleResultsFound("the statement returned more than one row")
        return self.rows[0]

    def scalar(self) -> Any:
        """The first column of the first row; None without a row."""
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


class Prepared:
    """A Core statement, compiled for each database the first time it runs there."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def run(self, connection: Connection, values: Mapping[str, Any]) -> Rows:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:  # two threads may both compile it: the same result, kept once
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        parameters = compiled.values(values)
        if _watched(connection) or not connection.in_transaction():
            result = connection.exec_driver_sql(compiled.sql, parameters)
            return compiled.rows([tuple(row) for row in result] if result.returns_rows else [])
        cursor = connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, parameters)
            rows = cast(list[tuple[Any, ...]], cursor.fetchall() if cursor.description else [])
        except Exception as error:
            # As `exec_driver_sql` would: the driver's error raised as SQLAlchemy's own class, the
            # cursor closed, and a lost connection invalidated (the pool replaced where the
            # dialect says so). It always raises.
            connection._handle_dbapi_exception(error, compiled.sql, parameters, cursor, None)
        cursor.close()
        return compiled.rows(rows)


def _watched(connection: Connection) -> bool:
    """Something sees each statement of `connection`: cursor listeners or SQL echo."""
    dispatch = connection.dispatch
    return bool(
        dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or connection.engine.logger.isEnabledFor(logging.INFO)
    )
