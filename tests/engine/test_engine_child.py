"""`callnow serve`'s engine child: the start handshake, restarts after a crash, and stopping.

These children are small Python scripts that speak the child's side of the protocol
(`callnow.engine.child`), so each test can make the engine crash, hang or never get ready on
cue. `tests/e2e/test_serve_processes.py` runs the real `callnow serve` and `callnow engine`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest

from callnow.config import EngineSettings, Settings
from callnow.engine.child import EngineChild, EngineDidNotStart, RestartDelays, read_settings
from tests.support.processes import alive

FAKE_ENGINE = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path

    from callnow.engine import child

    behaviour, record = sys.argv[1], Path(sys.argv[2])
    ready_fd = int(sys.argv[sys.argv.index("--ready-fd") + 1])
    settings = child.read_settings(sys.stdin.buffer)
    with record.open("a") as out:
        out.write(f"{os.getpid()} {settings.engine.engine_id}\\n")
    if behaviour == "dies-at-start":
        sys.exit(3)
    if behaviour == "never-ready":
        time.sleep(60)
    child.report_ready(ready_fd)
    if behaviour == "ignores-stop":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stdin.buffer.read()
        time.sleep(60)
    sys.stdin.buffer.read()  # until the parent closes it, or dies
    sys.exit(0)
    """
)

FAST = RestartDelays(first_s=0.05, longest_s=0.2, settled_after_s=60)


@pytest.fixture
def fake_engine(tmp_path: Path) -> Callable[[str], tuple[list[str], Path]]:
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)

    def command(behaviour: str) -> tuple[list[str], Path]:
        record = tmp_path / f"{behaviour}.started"
        record.touch()
        return [sys.executable, str(script), behaviour, str(record)], record

    return command


@pytest.fixture
def children() -> Iterator[list[EngineChild]]:
    started: list[EngineChild] = []
    yield started
    for engine in started:
        engine.stop()


def settings() -> Settings:
    return Settings(engine=EngineSettings(engine_id="engine-under-test"))


def starts(record: Path) -> list[tuple[int, str]]:
    lines = record.read_text().split()
    return [(int(pid), engine_id) for pid, engine_id in zip(lines[::2], lines[1::2], strict=True)]


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_returns_once_the_engine_says_it_is_ready_with_the_parents_settings(
    fake_engine, children
):
    command, record = fake_engine("well")
    engine = EngineChild(settings(), command=command)
    children.append(engine)
    engine.start()
    assert starts(record) == [(engine.pid, "engine-under-test")]
    assert alive(engine.pid)


def test_an_engine_that_exits_before_it_is_ready_stops_the_start_with_its_exit_code(
    fake_engine,
):
    command, _ = fake_engine("dies-at-start")
    with pytest.raises(EngineDidNotStart, match="exit code 3"):
        EngineChild(settings(), command=command).start()


def test_an_engine_that_never_gets_ready_is_stopped_after_the_start_timeout(fake_engine):
    command, record = fake_engine("never-ready")
    engine = EngineChild(settings(), command=command, start_timeout_s=0.5, stop_timeout_s=0.5)
    with pytest.raises(EngineDidNotStart):
        engine.start()
    [(pid, _)] = starts(record)
    assert not alive(pid)


def test_a_crashed_engine_is_started_again(fake_engine, children):
    command, record = fake_engine("well")
    restarted: list[int] = []
    engine = EngineChild(settings(), command=command, delays=FAST, on_restart=restarted.append)
    children.append(engine)
    engine.start()
    first = engine.pid
    assert engine.status == "running"
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: engine.status == "restarting")
    wait_until(lambda: len(restarted) == 1)
    assert engine.pid == restarted[0] != first
    assert engine.status == "running"
    assert [pid for pid, _ in starts(record)] == [first, restarted[0]]
    assert alive(engine.pid)


def test_stop_closes_the_engines_stdin_and_it_exits_by_itself(fake_engine):
    command, _ = fake_engine("well")
    engine = EngineChild(settings(), command=command, delays=FAST)
    engine.start()
    pid = engine.pid
    assert engine.stop() == 0  # its own exit, not a signal
    assert not alive(pid)


def test_an_engine_that_ignores_the_stop_is_killed_after_the_stop_timeout(fake_engine):
    command, _ = fake_engine("ignores-stop")
    engine = EngineChild(settings(), command=command, stop_timeout_s=0.5)
    engine.start()
    pid = engine.pid
    assert engine.stop() == -signal.SIGKILL
    assert not alive(pid)


def test_a_stopped_engine_is_not_started_again(fake_engine):
    command, record = fake_engine("well")
    restarted: list[int] = []
    engine = EngineChild(settings(), command=command, delays=FAST, on_restart=restarted.append)
    engine.start()
    engine.stop()
    time.sleep(FAST.longest_s * 2)
    assert restarted == []
    assert len(starts(record)) == 1


def test_the_settings_travel_whole_including_secrets():
    original = Settings(
        database_url="postgresql+psycopg://callnow@db/callnow",
        trunk={"username": "acme", "password": "s3cret"},
        web={"secret_key": "k" * 48, "port": 8123},
    )
    line = original.model_dump_json()
    assert json.loads(line)["trunk"]["password"] == "s3cret"
    assert read_settings(BytesIO(line.encode() + b"\n")) == original


def test_settings_cut_short_are_refused():
    with pytest.raises(ValueError, match="one line of JSON"):
        read_settings(BytesIO(b'{"web": {"port": 80'))


def test_restart_delays_double_while_the_engine_keeps_dying_and_reset_once_it_ran_a_while():
    delays = RestartDelays(first_s=1, longest_s=30, settled_after_s=60)
    assert delays.after(None, ran_for_s=0.5) == 1
    assert delays.after(1, ran_for_s=0.5) == 2
    assert delays.after(16, ran_for_s=0.5) == 30
    assert delays.after(30, ran_for_s=0.5) == 30
    assert delays.after(30, ran_for_s=61) == 1


@pytest.mark.parametrize(
    ("database_url", "process", "own"),
    [
        ("", "auto", False),
        ("postgresql+psycopg://callnow@db/callnow", "auto", True),
        ("postgresql+psycopg://callnow@db/callnow", "shared", False),
        ("", "own", True),
    ],
)
def test_auto_gives_the_engine_its_own_process_on_postgresql_only(database_url, process, own):
    chosen = Settings(database_url=database_url, engine=EngineSettings(process=process))
    assert chosen.engine_in_own_process is own
