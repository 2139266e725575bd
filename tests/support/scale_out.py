"""Several `callnow engine` processes behind a Kamailio front door, on one machine.

Shared by tests/e2e/test_scale_out.py and bench/scale_out_bench.py. Each engine is the real
command in its own process, on a loopback address of its own (127.0.0.11, .12, .13: Linux
routes all of 127/8 to `lo`), with the rtpengine it spawns on that same address, sharing the
test's PostgreSQL database. Kamailio (peers/kamailio/front_door.cfg) is the only SIP peer the
engines know: the owner's template names it, and it is the trunk's outbound proxy. It has the
engines as dispatcher set 1 and probes them with OPTIONS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callnow.store.db import transaction
from tests.peers.kamailio import KamailioProxy, _answers_options, _die_with_parent, kamailio_command
from tests.peers.rtpengine import reserved_rtp_block
from tests.support.ports import free_port
from tests.support.world import queued_request

ROOT = Path(__file__).resolve().parents[2]
FRONT_DOOR = ROOT / "peers" / "kamailio" / "front_door.cfg"
CALLNOW = Path(sys.executable).with_name("callnow")
ENGINE_HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
# The engines share the rig's Redis, as production web and engine processes do.
REDIS_URL = "redis://127.0.0.1:6379/0"
# Three engines importing, spawning rtpengine and connecting at once on a loaded 2-core machine.
START_TIMEOUT_S = 120.0

Address = tuple[str, int]


def start_front_door(
    workdir: Path, engines: Sequence[Address], *, pbx: Address, trunk: Address
) -> KamailioProxy:
    """Kamailio on a free 127.0.0.1 port with `engines` as its dispatcher set; it reaches the
    owners' phones at `pbx` and visitors at `trunk`."""
    workdir.mkdir(parents=True, exist_ok=True)
    engines_list = workdir / "engines.list"
    engines_list.write_text("".join(f"1 sip:{host}:{port}\n" for host, port in engines))
    defines = [
        f'ENGINES_LIST="{engines_list}"',
        f'PBX="sip:{pbx[0]}:{pbx[1]}"',
        f'TRUNK="sip:{trunk[0]}:{trunk[1]}"',
    ]
    last_error = ""
    for _attempt in range(5):
        port = free_port("127.0.0.1")
        with open(workdir / "kamailio.log", "wb") as log:
            process = subprocess.Popen(
                kamailio_command(FRONT_DOOR, workdir, port, defines, workers=4),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proxy = KamailioProxy(port, workdir, process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proxy.alive():
            if _answers_options(port, 0.2):
                return proxy
        proxy.stop()
        last_error = f"exit code {process.returncode}; log tail:\n{proxy.log_tail()}"
        if "Address already in use" not in last_error:
            break
    pytest.fail(f"the Kamailio front door did not start: {last_error}", pytrace=False)


@dataclass
class EngineProcess:
    engine_id: str
    host: str
    sip_port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.sip_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind (its rtpengine child stays until it notices)."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def engine_env(
    *,
    engine_id: str,
    host: str,
    sip_port: int,
    front_door: Address,
    trunk: Address,
    database_url: str,
    data_dir: Path,
    rtp_ports: tuple[int, int],
    extra: dict[str, str],
) -> dict[str, str]:
    door = f"{front_door[0]}:{front_door[1]}"
    return {
        **os.environ,
        "CALLNOW_DATABASE_URL": database_url,
        "CALLNOW_DATA_DIR": str(data_dir),
        "CALLNOW_DEMO_DATA": "false",
        "CALLNOW_WEB__SECRET_KEY": "scale-out-" + "k" * 40,
        "CALLNOW_ABUSE__STORAGE_URL": REDIS_URL,
        "CALLNOW_ENGINE__ENGINE_ID": engine_id,
        "CALLNOW_SIP__LISTEN_HOST": host,
        "CALLNOW_SIP__LISTEN_PORT": str(sip_port),
        # Kamailio's OPTIONS probes come from here: answered in full, never rate-limited.
        "CALLNOW_SIP__TRUSTED_SOURCES": f'["{front_door[0]}/32"]',
        # The PBX is reached through the front door, which forwards by the request URI's user.
        "CALLNOW_SIP__OWNER_URI_TEMPLATE": f"sip:{{internal}}@{door}",
        # The trunk's own address in the request URI, the front door as outbound proxy.
        "CALLNOW_TRUNK__URI_TEMPLATE": f"sip:{{e164}}@{trunk[0]}:{trunk[1]}",
        "CALLNOW_TRUNK__OUTBOUND_PROXY": door,
        "CALLNOW_RTPENGINE__MODE": "spawn",
        "CALLNOW_RTPENGINE__NG_HOST": host,
        "CALLNOW_RTPENGINE__NG_PORT": str(free_port(host)),
        "CALLNOW_RTPENGINE__DTMF_LOG_PORT": str(free_port(host)),
        "CALLNOW_RTPENGINE__PORT_MIN": str(rtp_ports[0]),
        "CALLNOW_RTPENGINE__PORT_MAX": str(rtp_ports[1]),
        "CALLNOW_RTPENGINE__NUM_THREADS": "2",
        "CALLNOW_RTPENGINE__MEDIA_NUM_THREADS": "2",
        # Three engines, three rtpengines, SIPp, Kamailio and PostgreSQL share two cores.
        "CALLNOW_RTPENGINE__TIMEOUT_S": "5",
        **extra,
    }


@contextlib.contextmanager
def engines_behind(
    front_door: KamailioProxy,
    addresses: Sequence[Address],
    *,
    trunk: Address,
    database_url: str,
    workdir: Path,
    extra: dict[str, str] | None = None,
) -> Iterator[list[EngineProcess]]:
    """Start one `callnow engine` per address (engine-1, engine-2, …) and wait until each says
    it is running; stop (SIGTERM) those still alive at the end."""
    engines: list[EngineProcess] = []
    with contextlib.ExitStack() as stack:
        for number, (host, port) in enumerate(addresses, start=1):
            engine_id = f"engine-{number}"
            rtp_ports = stack.enter_context(reserved_rtp_block())
            env = engine_env(
                engine_id=engine_id,
                host=host,
                sip_port=port,
                front_door=front_door.address,
                trunk=trunk,
                database_url=database_url,
                data_dir=workdir / "data",
                rtp_ports=rtp_ports,
                extra=extra or {},
            )
            log = workdir / f"{engine_id}.log"
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [str(CALLNOW), "engine"], env=env, stdout=out, stderr=out
                )
            engines.append(EngineProcess(engine_id, host, port, process, log))
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            for engine in engines:
                while f"engine {engine.engine_id} running" not in engine.log_text():
                    exited = engine.process.poll()
                    if exited is not None or time.monotonic() > deadline:
                        why = "timed out" if exited is None else f"exit code {exited}"
                        pytest.fail(
                            f"{engine.engine_id} did not start ({why}):\n"
                            f"{engine.log_text()[-4000:]}",
                            pytrace=False,
                        )
                    time.sleep(0.1)
            yield engines
        finally:
            for engine in engines:
                engine.stop()


def queue_requests(sessions: sessionmaker[Session], numbers: Sequence[str]) -> list[int]:
    """Queue one request of Alice's page per number that the owner confirms by a key press,
    in one transaction, as the web would have; returns their ids in order."""
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        requests = [
            queued_request(session, "alice", number, decision="confirm", now=now)
            for number in numbers
        ]
        session.flush()
        return [request.id for request in requests]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, logs: Callable[[], str]):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; logs:\n{logs()[-6000:]}", pytrace=False)
        time.sleep(0.1)
