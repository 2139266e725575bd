"""Structured logging: key=value lines for people, JSON lines for log collectors.

Tracebacks are always plain text without local variables: rich tracebacks with locals cost
thousands of lines and seconds per error under load, and locals can hold secrets."""

from __future__ import annotations

import logging
from typing import TextIO

import structlog


def configure(
    level: str = "info",
    fmt: str = "console",
    *,
    process: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """`process` names this process on each line, where several write to one stream (the
    engine child of `callnow serve` logs `process=engine`). `stream` defaults to stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process is not None:
        shared.append(_named(process))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=_rendering(fmt))
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _rendering(fmt: str) -> list[structlog.types.Processor]:
    strip_meta = structlog.stdlib.ProcessorFormatter.remove_processors_meta
    if fmt == "json":
        # format_exc_info renders the traceback as one plain string field, `exception`.
        return [
            strip_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    return [
        strip_meta,
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        ),
    ]


def _named(process: str) -> structlog.types.Processor:
    def add_process(
        _logger: object, _method: str, event: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event.setdefault("process", process)
        return event

    return add_process
