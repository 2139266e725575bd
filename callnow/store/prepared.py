"""Hot statements compiled once per database and run as the driver's own SQL.

`Connection.execute` of a Core statement finds the statement in the compiled cache, builds its
parameters bind by bind and sets up a compiled execution each time: for the limit counters'
statements, which have dozens of parameters and run on every public form post, that cost about
as much as the database's own work. A `Prepared` statement is compiled once per dialect; each run
only puts its values in order, converts those whose type needs it (an aware datetime into
SQLite's text) and hands them over through `Connection.exec_driver_sql`. So it stays in the
connection's transaction, and the connection's events see it like any other statement.

Only for statements whose results are plain numbers and strings: rows come back as the driver
gives them, with no result types applied. Expanding IN lists are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_REQUIRED = object()  # a parameter the statement has no value for: each run must give one


@dataclass(frozen=True)
class _Parameter:
    key: str  # the name values are given under (the `bindparam`'s)
    fixed: Any  # the statement's own value (a literal), or _REQUIRED
    convert: Callable[[Any], Any] | None  # the type's conversion for this database


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Positional drivers (SQLite): one parameter per placeholder, in order. Named drivers
    # (psycopg): one per name.
    positional: bool
    parameters: tuple[tuple[str, _Parameter], ...]

    def values(self, given: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        ordered = []
        for name, parameter in self.parameters:
            value = given.get(parameter.key, parameter.fixed)
            if value is _REQUIRED:
                raise KeyError(f"no value for the statement's parameter {parameter.key!r}")
            if parameter.convert is not None and value is not None:
                value = parameter.convert(value)
            ordered.append((name, value))
        if self.positional:
            return tuple(value for _, value in ordered)
        return dict(ordered)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.escaped_bind_names:
        raise ValueError("a prepared statement's parameter names must need no escaping")
    by_name: dict[str, _Parameter] = {}
    for bind, name in compiled.bind_names.items():
        if bind.expanding:
            raise ValueError("a prepared statement cannot expand an IN list")
        fixed = _REQUIRED if bind.required else bind.effective_value
        by_name[name] = _Parameter(
            bind.key, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)
        )
    if compiled.positiontup is not None:
        order = [(name, by_name[name]) for name in compiled.positiontup]
        return _Compiled(compiled.string, True, tuple(order))
    return _Compiled(compiled.string, False, tuple(by_name.items()))


class Prepared:
    """A Core statement, compiled for each database the first time it runs there."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def run(
        self, connection: Connection, values: Mapping[str, Any]
    ) -> CursorResult[*tuple[Any, ...]]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:  # two threads may both compile it: the same result, kept once
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return connection.exec_driver_sql(compiled.sql, compiled.values(values))
