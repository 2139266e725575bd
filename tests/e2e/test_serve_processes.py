"""`callnow serve` on SQLite and on PostgreSQL: the web in its own process, the call engine in a
child it starts, watches, wakes and stops. The real command, a real SIPp phone for the owner,
real rtpengine.

The engine names itself after its process (host-pid), and each request records the engine that
claimed it: so the tests can tell which process dialled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callnow.bootstrap import seed_default_deck
from callnow.domain.request_state import TERMINAL, RequestState
from callnow.store.db import make_engine, make_session_factory, migrate, transaction
from callnow.store.models import CallRequest
from tests.e2e.conftest import engine_ports_env
from tests.peers.sipp import SippPeer
from tests.support.ports import free_port
from tests.support.processes import alive
from tests.support.world import empty_database, seed_alice
from tests.web.helpers import form_token

pytestmark = pytest.mark.peers
# Far longer than a test waits for a claim: only a wake-up can have made the engine look.
SLOW_POLL_S = 30.0
CALLNOW = Path(sys.executable).with_name("callnow")


@dataclass
class Served:
    base_url: str
    process: subprocess.Popen[bytes]
    owner: SippPeer
    log: Path
    request_state: Callable[[str], tuple[str, str | None]]

    def engine_children(self) -> list[int]:
        return children_of(self.process.pid)

    def ask_for_a_call(self, number: str) -> str:
        """Post the public form; the request's status token."""
        with httpx.Client(base_url=self.base_url) as client:
            page = client.get("/callnow/alice")
            answer = client.post(
                "/callnow/alice",
                data={"form_token": form_token(page.text), "name": "Mary", "number": number},
            )
        assert answer.status_code == 303, answer.text
        return answer.headers["location"].rsplit("/", 1)[1]

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; log:\n{self.log.read_text()[-6000:]}")
            time.sleep(0.05)

    def wait_until_finished(self, token: str, timeout_s: float = 30) -> str:
        self.wait(
            lambda: RequestState(self.request_state(token)[0]) in TERMINAL, "the end", timeout_s
        )
        return self.request_state(token)[0]


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'callnow.sqlite3'}"
        migrate(url)
        yield url
    else:
        url = request.getfixturevalue("postgresql_url")
        yield url
        empty_database(url)


@pytest.fixture
def poll_interval_s() -> float:
    return 0.2


@pytest.fixture
def served(database_url, poll_interval_s, sipp_peer, tmp_path) -> Iterator[Served]:
    db = make_engine(database_url)
    sessions = make_session_factory(db)
    with transaction(sessions) as session:
        seed_alice(session)
        seed_default_deck(session)

    def request_state(token: str) -> tuple[str, str | None]:
        with sessions() as session:
            request = session.scalars(select(CallRequest).filter_by(token=token)).one()
            return request.state, request.claimed_by

    owner = sipp_peer("busy.xml")
    port = free_port()
    log = tmp_path / "serve.log"
    with engine_ports_env() as ports, log.open("ab") as out:
        env = serve_env(database_url, tmp_path, port, owner.port, ports)
        env["CALLNOW_ENGINE__POLL_INTERVAL_S"] = str(poll_interval_s)
        process = subprocess.Popen([str(CALLNOW), "serve"], env=env, stdout=out, stderr=out)
        served = Served(f"http://127.0.0.1:{port}", process, owner, log, request_state)
        try:
            served.wait(lambda: healthy(served.base_url), "the web to answer")
            yield served
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            db.dispose()


def serve_env(
    database_url: str, data_dir: Path, web_port: int, owner_port: int, ports: dict[str, str]
) -> dict[str, str]:
    return {
        **os.environ,
        **ports,
        "CALLNOW_DATABASE_URL": database_url,
        "CALLNOW_DATA_DIR": str(data_dir),
        "CALLNOW_DEMO_DATA": "false",
        "CALLNOW_WEB__PORT": str(web_port),
        "CALLNOW_WEB__PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "CALLNOW_SIP__OWNER_URI_TEMPLATE": f"sip:{{internal}}@127.0.0.1:{owner_port}",
        "CALLNOW_ENGINE__POLL_INTERVAL_S": "0.2",
        # The owner's phone is always busy and these tests ring it again right after: what
        # they check is who dials and how soon it is woken, not how long a busy owner is held.
        "CALLNOW_ENGINE__OWNER_BUSY_HOLD_S": "0",
    }


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False


def engine_health(base_url: str) -> str:
    return httpx.get(f"{base_url}/api/v1/health").json()["engine"]


def test_the_engine_runs_in_a_child_process_and_dials_what_the_web_accepted(served):
    [engine_pid] = served.engine_children()
    token = served.ask_for_a_call("02 9037 5678")
    served.wait_until_finished(token)
    assert len(served.owner.received("INVITE")) == 1
    _, claimed_by = served.request_state(token)
    assert claimed_by is not None and claimed_by.endswith(f"-{engine_pid}")


def test_an_engine_that_crashed_is_started_again_and_the_web_kept_serving(served):
    [first] = served.engine_children()
    assert engine_health(served.base_url) == "running"
    os.kill(first, signal.SIGKILL)
    served.wait(lambda: engine_health(served.base_url) == "restarting", "health: restarting")
    # Meanwhile the web takes requests; they wait, queued, for the next engine.
    token = served.ask_for_a_call("02 9037 5679")
    served.wait(lambda: served.engine_children() not in ([], [first]), "a new engine")
    [second] = served.engine_children()
    served.wait(lambda: engine_health(served.base_url) == "running", "health: running")
    assert served.wait_until_finished(token) != "interrupted"
    _, claimed_by = served.request_state(token)
    assert claimed_by is not None and claimed_by.endswith(f"-{second}")
    assert len(served.owner.received("INVITE")) == 1
    log = served.log.read_text()
    assert "exited with code -9" in log
    # The two processes write to one stream; the engine's lines say which they are.
    lines = log.splitlines()
    assert any(f"-{second} running" in line and "process=engine" in line for line in lines)


@pytest.mark.parametrize("poll_interval_s", [SLOW_POLL_S])
def test_the_web_wakes_its_engine_child_and_the_next_one_after_a_crash(served):
    """The engine polls only every 30 s here: each request is claimed long before, because the
    web woke the engine (a pipe on SQLite, NOTIFY on PostgreSQL), also the restarted one."""
    half_a_poll = SLOW_POLL_S / 2

    def claimed_within_half_a_poll(token: str, engine_pid: int) -> None:
        served.wait(lambda: served.request_state(token)[1] is not None, "the claim", half_a_poll)
        assert served.request_state(token)[1].endswith(f"-{engine_pid}")

    [first] = served.engine_children()
    first_token = served.ask_for_a_call("02 9037 5680")
    claimed_within_half_a_poll(first_token, first)
    served.wait_until_finished(first_token)
    os.kill(first, signal.SIGKILL)
    served.wait(lambda: served.engine_children() not in ([], [first]), "a new engine")
    served.wait(lambda: engine_health(served.base_url) == "running", "health: running")
    [second] = served.engine_children()
    claimed_within_half_a_poll(served.ask_for_a_call("02 9037 5681"), second)


def test_stopping_serve_stops_its_engine(served):
    [engine_pid] = served.engine_children()
    served.process.send_signal(signal.SIGTERM)
    # uvicorn ends by raising the signal again, once it has shut down.
    assert served.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert not alive(engine_pid)  # stopped while the web shut down, not after


def test_an_engine_whose_serve_was_killed_stops_by_itself(served):
    [engine_pid] = served.engine_children()
    served.process.kill()
    served.process.wait()
    deadline = time.monotonic() + 30
    while alive(engine_pid):
        assert time.monotonic() < deadline, "the orphaned engine kept running"
        time.sleep(0.05)


def test_serve_does_not_start_when_its_engine_cannot(database_url, tmp_path):
    web_port = free_port()
    with engine_ports_env() as ports:
        # An external rtpengine that is not there: found only when the engine child starts
        # (a port already taken is refused by serve itself, before any child).
        ports = {**ports, "CALLNOW_RTPENGINE__MODE": "external"}
        env = serve_env(database_url, tmp_path, web_port, free_port(), ports)
        result = subprocess.run([str(CALLNOW), "serve"], env=env, capture_output=True, timeout=120)
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode != 0, output[-3000:]
    assert "the call engine did not start" in output
    assert "Uvicorn running" not in output  # the web never took a request without an engine


def test_serve_names_the_engine_port_another_program_holds(database_url, tmp_path):
    web_port = free_port()
    with (
        engine_ports_env() as ports,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken,
    ):
        taken.bind(("127.0.0.1", int(ports["CALLNOW_SIP__LISTEN_PORT"])))  # the engine's SIP port
        env = serve_env(database_url, tmp_path, web_port, free_port(), ports)
        result = subprocess.run([str(CALLNOW), "serve"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 1
    port = ports["CALLNOW_SIP__LISTEN_PORT"]
    expected = f"sip.listen_port {port} is already in use on 127.0.0.1"
    assert result.stderr.decode().strip() == expected
    assert "Uvicorn running" not in result.stdout.decode()
