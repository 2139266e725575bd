"""Two web processes behind nginx, with the proxy rules of ops/nginx/callnow-locations.conf.

Real processes: nginx (Debian package), two `callnow serve` with `engine.enabled = false` and
`web.trusted_proxies` set to nginx's address, sharing PostgreSQL and Redis (the rate limits).
Visitors connect to nginx from loopback addresses of their own (127.x.y.z), so the address
nginx puts in X-Forwarded-For differs from nginx's own. Shown:

- posts through nginx land in the shared queue, from both web processes, each request stored
  with its visitor's address (not nginx's);
- the per-address limit counts one visitor's posts across both processes (Redis) and refuses
  the one too many with 429, while another visitor behind the same proxy is not refused;
- a visitor's status stream through nginx is live: each state change reaches the client while
  the stream is open (no buffering), up to the final state, after which the stream ends.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callnow.domain.request_state import RequestState
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallRequest
from callnow.store.requests import move
from tests.support.ports import free_port
from tests.support.world import empty_database, seed_alice
from tests.web.helpers import form_token

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
LOCATIONS = ROOT / "ops" / "nginx" / "callnow-locations.conf"
CALLNOW = Path(sys.executable).with_name("callnow")
UNLIMITED = "1000000/minute"
PER_SOURCE = 3
LIFTED_LIMITS = (
    "PER_NETWORK", "PER_PROFILE", "PER_NUMBER", "PER_BLOCK", "PLATFORM", "CAPTCHA_AUTO_ON",
    "SPIKE_CAPTCHA",
)  # fmt: skip


def nginx_conf(workdir: Path, port: int, upstreams: list[int]) -> str:
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
    temp = "".join(
        f"    {kind}_temp_path {workdir}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$remote_addr $request_method $uri $status $upstream_addr';
    access_log {workdir}/access.log upstream;
{temp}    upstream callnow_web {{
{servers}        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {LOCATIONS};
    }}
}}
"""


@dataclass
class Site:
    base_url: str
    access_log: Path
    logs: list[Path]

    def visitor(self) -> tuple[str, httpx.Client]:
        """A visitor on a loopback address of its own (all of 127/8 is local), new each run:
        the limit counters in the shared Redis outlive the test."""
        address = ".".join(["127", *(str(random.randint(2, 254)) for _ in range(3))])
        transport = httpx.HTTPTransport(local_address=address)
        return address, httpx.Client(base_url=self.base_url, transport=transport, timeout=10)

    def upstreams_of(self, method: str, path: str) -> list[str]:
        lines = [line.split() for line in self.access_log.read_text().splitlines()]
        return [f[4] for f in lines if len(f) >= 5 and f[1] == method and f[2] == path]

    def tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs if p.exists())


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never answered 200:\n{log.read_text()[-4000:]}", pytrace=False)


@pytest.fixture
def site(postgresql_url, tmp_path) -> Iterator[Site]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (Debian package nginx-light); see scripts/setup.sh")
    db = make_engine(postgresql_url)
    with transaction(make_session_factory(db)) as session:
        seed_alice(session)
    port = free_port()
    web_ports = [free_port(), free_port()]
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for number, web_port in enumerate(web_ports, start=1):
            log = tmp_path / f"web-{number}.log"
            env = {
                **os.environ,
                "CALLNOW_DATABASE_URL": postgresql_url,
                "CALLNOW_DATA_DIR": str(tmp_path / f"data-{number}"),
                "CALLNOW_DEMO_DATA": "false",
                "CALLNOW_ENGINE__ENABLED": "false",
                "CALLNOW_WEB__PORT": str(web_port),
                "CALLNOW_WEB__WORKER_THREADS": "4",
                "CALLNOW_WEB__PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "CALLNOW_WEB__SECRET_KEY": "nginx-" + "k" * 40,  # the same on every web process
                "CALLNOW_WEB__TRUSTED_PROXIES": '["127.0.0.1/32"]',
                "CALLNOW_ABUSE__STORAGE_URL": "redis://127.0.0.1:6379/0",
                "CALLNOW_ABUSE__PER_SOURCE": f"{PER_SOURCE}/minute",
                **{f"CALLNOW_ABUSE__{name}": UNLIMITED for name in LIFTED_LIMITS},
            }
            with log.open("ab") as out:
                processes.append(
                    subprocess.Popen([str(CALLNOW), "serve"], env=env, stdout=out, stderr=out)
                )
            logs.append(log)
        for web_port, process, log in zip(web_ports, processes, logs, strict=True):
            wait_until_healthy(f"http://127.0.0.1:{web_port}/api/v1/health", process, log)
        workdir = tmp_path / "nginx"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / "tmp" / kind).mkdir(parents=True)
        (workdir / "nginx.conf").write_text(nginx_conf(workdir, port, web_ports))
        proxy_log = workdir / "nginx.out"
        logs += [proxy_log, workdir / "error.log"]
        with proxy_log.open("ab") as out:
            proxy = subprocess.Popen(
                [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
                 "-g", "daemon off;"],
                stdout=out, stderr=out,
            )  # fmt: skip
        processes.append(proxy)
        wait_until_healthy(f"http://127.0.0.1:{port}/api/v1/health", proxy, proxy_log)
        yield Site(f"http://127.0.0.1:{port}", workdir / "access.log", logs)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        db.dispose()
        empty_database(postgresql_url)


def post_form(client: httpx.Client, number: str) -> httpx.Response:
    page = client.get("/callnow/alice")
    assert page.status_code == 200, page.text[:300]
    return client.post(
        "/callnow/alice",
        data={"form_token": form_token(page.text), "name": "Mary", "number": number},
    )


@pytest.mark.timeout(180)
def test_two_web_processes_behind_nginx_share_the_queue_the_limits_and_stay_live(
    site, postgresql_url
):
    db = make_engine(postgresql_url)
    try:
        visitors_through_nginx(site, make_session_factory(db))
    finally:
        db.dispose()


def visitors_through_nginx(site: Site, sessions) -> None:
    """The test itself, given a session factory it does not own."""
    first_address, first = site.visitor()
    second_address, second = site.visitor()
    with first, second:
        answers = []
        for i in range(PER_SOURCE + 1):
            answers.append(post_form(first, f"02 9037 56{i:02d}"))
            if i == 0:
                first.get("/api/v1/health")  # the next post goes to the other web process
        # One visitor's posts counted together across both processes: the one too many refused.
        assert [a.status_code for a in answers] == [303] * PER_SOURCE + [429], site.tail()
        # Another visitor behind the same proxy has a count of their own.
        other = post_form(second, "02 9037 5699")
        assert other.status_code == 303, site.tail()

    # Both web processes took posts; every accepted one is in the shared queue, under the
    # visitor's own address.
    assert len(set(site.upstreams_of("POST", "/callnow/alice"))) == 2, site.access_log.read_text()
    with sessions() as session:
        stored = list(session.scalars(select(CallRequest).order_by(CallRequest.id)))
    assert [r.source_address for r in stored] == [first_address] * PER_SOURCE + [second_address]
    assert {r.state for r in stored} == {"queued"}

    # The last visitor watches their request through nginx while it moves along.
    token = other.headers["location"].rsplit("/", 1)[1]
    request_id = stored[-1].id
    path = f"/callnow/alice/requests/{token}/events"
    states = ["calling_owner", "calling_requester", "connected", "completed"]
    seen: list[tuple[str, bool]] = []
    with httpx.Client(base_url=site.base_url, timeout=10) as client, client.stream(
        "GET", path
    ) as stream:  # fmt: skip
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        # Read to the end: the web ends the stream after the final state.
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            frame = json.loads(line[5:])
            seen.append((frame["state"], frame["terminal"]))
            if frame["terminal"] or len(seen) > len(states):
                continue
            # Each change is made only once the previous state has reached the visitor: a
            # buffered stream would stall here until the read timeout.
            next_state = states[len(seen) - 1]
            with transaction(sessions) as session:
                move(session.get(CallRequest, request_id), RequestState(next_state), "test")
    assert seen == [("queued", False)] + [(s, s == "completed") for s in states]
