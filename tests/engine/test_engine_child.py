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
import threading
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
    if behaviour == "counts-wakes":
        import asyncio

        wake_fd = int(sys.argv[sys.argv.index("--wake-fd") + 1])

        def woken():
            with record.with_suffix(".woken").open("a") as out:
                out.write(f"{os.getpid()}\\n")

        async def main():
            child.wake_on(wake_fd, woken)
            child.report_ready(ready_fd)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)

        asyncio.run(main())
        sys.exit(0)
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


def woken_pids(record: Path) -> list[int]:
    woken = record.with_suffix(".woken")
    return [int(pid) for pid in woken.read_text().split()] if woken.exists() else []


def test_the_web_wakes_its_engine_through_the_pipe_and_the_next_engine_after_a_crash(
    fake_engine, children
):
    command, record = fake_engine("counts-wakes")
    restarted: list[int] = []
    engine = EngineChild(
        settings(), command=command, delays=FAST, on_restart=restarted.append, wake_pipe=True
    )
    children.append(engine)
    engine.start()
    first = engine.pid
    assert woken_pids(record) == []
    engine.wake()
    wait_until(lambda: woken_pids(record) == [first])
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(restarted) == 1)
    engine.wake()
    wait_until(lambda: woken_pids(record)[1:] == [restarted[0]])


def test_a_wake_up_nobody_reads_is_dropped_and_the_web_never_waits_for_it(fake_engine):
    command, _ = fake_engine("well")  # an engine that never reads its wake pipe
    engine = EngineChild(settings(), command=command, wake_pipe=True)
    engine.start()
    try:
        # Far more than a pipe holds (64 KiB): a blocking write would hang here for good.
        waking = threading.Thread(target=lambda: [engine.wake() for _ in range(200_000)])
        waking.start()
        waking.join(60)
        assert not waking.is_alive()
    finally:
        assert engine.stop() == 0
    engine.wake()  # after the stop: nothing to wake, and no error


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
        ("", "auto", True),  # the data directory's SQLite file
        ("sqlite:////var/lib/callnow/callnow.sqlite3", "auto", True),
        ("sqlite://", "auto", False),  # in memory: no other process could see it
        ("sqlite:///:memory:", "auto", False),
        ("postgresql+psycopg://callnow@db/callnow", "auto", True),
        ("postgresql+psycopg://callnow@db/callnow", "shared", False),
        ("", "shared", False),
        ("", "own", True),
    ],
)
def test_auto_gives_the_engine_its_own_process_wherever_another_process_sees_the_database(
    database_url, process, own
):
    chosen = Settings(database_url=database_url, engine=EngineSettings(process=process))
    assert chosen.engine_in_own_process is own
