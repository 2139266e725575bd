"""The log format an operator filters on: logger name and bound context on every line, and
plain tracebacks that never print local variables (they can hold secrets)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from callnow import logs

SECRET = "pw-4f9c1d-never-print-me"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _fail_holding_a_secret() -> None:
    password = SECRET  # a local variable a locals-printing traceback would show
    raise RuntimeError(f"login refused ({len(password)} chars)")


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize("api", ["stdlib", "structlog"])
def test_an_exception_is_a_plain_traceback_without_locals(
    restore_logging: None, fmt: str, api: str
) -> None:
    out = io.StringIO()
    logs.configure("info", fmt, stream=out)
    try:
        _fail_holding_a_secret()
    except RuntimeError:
        if api == "stdlib":
            logging.getLogger("callnow.test").exception("login failed")
        else:
            structlog.get_logger("callnow.test").exception("login_failed")

    text = out.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: login refused" in text
    assert "_fail_holding_a_secret" in text
    assert SECRET not in text
    assert "╭" not in text  # no rich box drawing


@pytest.mark.parametrize("api", ["stdlib", "structlog"])
def test_a_json_line_carries_the_logger_and_bound_context(restore_logging: None, api: str) -> None:
    out = io.StringIO()
    logs.configure("info", "json", process="engine", stream=out)
    with structlog.contextvars.bound_contextvars(request_ref="req-7"):
        if api == "stdlib":
            logging.getLogger("callnow.engine.x").info("dialled %s", "owner")
        else:
            structlog.get_logger("callnow.engine.x").info("dialled", role="owner")

    line = json.loads(out.getvalue().strip())
    assert line["logger"] == "callnow.engine.x"
    assert line["request_ref"] == "req-7"
    assert line["process"] == "engine"
    assert line["level"] == "info"
    assert line["event"].startswith("dialled")


def test_a_console_line_names_its_logger(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("info", "console", stream=out)
    logging.getLogger("callnow.services.intake").warning("slow")
    assert "callnow.services.intake" in out.getvalue()


async def test_every_line_of_a_callback_carries_its_request_ref(restore_logging: None) -> None:
    """A real callback run with fake phones whose owner dial fails: the engine's stdlib
    log line about it carries the callback's request_ref, though nothing passed it along."""
    from tests.engine.test_runner import FACTS, World, outcome_of

    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    world = World(failures={"dial_owner": OSError("no route to the PBX")})
    handle, _phones = await world.start()
    await outcome_of(handle)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    failed = [line for line in lines if line["event"] == "dial_failed"]
    assert failed, lines
    assert failed[0]["request_ref"] == FACTS.request_ref
    assert failed[0]["logger"] == "callnow.engine.runner"
    assert failed[0]["role"] == "owner"
    assert "OSError: no route to the PBX" in failed[0]["exception"]
    # Nothing leaks out of the callback's own context.
    assert structlog.contextvars.get_contextvars() == {}
