"""The two web apps the intake and flood benches serve, and closed-loop form posters.

CallNow is built as `callnow serve` builds it (migrated SQLite, demo page `john_doe` with the
image check off, serve's thread switch interval and frozen start-up objects), minus the engine,
with every abuse limit lifted so each post does the whole intake. The bare app is the floor to
compare with: Starlette parsing the same form fields and inserting one row into SQLite, one
connection per request, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from callnow import logs
from callnow.bootstrap import freeze_startup_objects, prepare, tune_thread_switching
from callnow.compose import create_app
from callnow.config import Settings, WebSettings
from tests.support.limits import LIFTED

PROFILE = "john_doe"  # the demo page: image check off, so no CAPTCHA is asked for


def callnow_app(
    data_dir: Path, trusted_proxies: list[str] | None = None, counters: str = "database://"
) -> Any:
    """CallNow's web app on a fresh SQLite file in `data_dir`, demo data seeded, engine off;
    its limit counters where `counters` says (`abuse.storage_url`)."""
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'callnow.sqlite3'}",
        demo_data=True,
        abuse=LIFTED.model_copy(update={"storage_url": counters}),
        web=WebSettings(
            secret_key="bench-" + "k" * 40,
            public_base_url="http://127.0.0.1",
            trusted_proxies=trusted_proxies or [],
        ),
    )
    settings, _ = prepare(settings)
    # Logged as `callnow serve` logs (info, one line per request placed), into nowhere: the
    # cost of logging counts, the terminal stays readable.
    logs.configure(settings.log_level, settings.log_format, stream=open(os.devnull, "w"))  # noqa: SIM115
    # As `callnow serve` runs: the GIL handed over after 1 ms, and what start-up built kept out
    # of the garbage collector's walks (both for the whole process, so the bare app too).
    tune_thread_switching()
    app = create_app(settings)
    freeze_startup_objects()
    return app


def bare_app(data_dir: Path) -> Starlette:
    """The same form, parsed and stored as one row, with nothing else around it."""
    database = data_dir / "bare.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE requests (id INTEGER PRIMARY KEY, name TEXT, number TEXT, token TEXT)"
        )

    def store(name: str, number: str, token: str) -> None:
        with sqlite3.connect(database, timeout=30) as connection:
            connection.execute(
                "INSERT INTO requests (name, number, token) VALUES (?, ?, ?)",
                (name, number, token),
            )

    async def page(request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse('<input name="form_token" value="bare">')
        form = await request.form()
        fields = {key: str(form.get(key, "")) for key in ("name", "number", "form_token")}
        # On the thread pool, as CallNow's sync routes do their database work.
        await run_in_threadpool(store, fields["name"], fields["number"], fields["form_token"])
        return RedirectResponse("/done", status_code=303)

    return Starlette(routes=[Route(f"/callnow/{PROFILE}", page, methods=["GET", "POST"])])


def number(n: int) -> str:
    """Distinct, valid Sydney numbers (02 9xxx xxxx)."""
    return f"029{n:07d}"


async def _form_token(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    page = await client.get(f"/callnow/{PROFILE}", headers=headers)
    match = re.search(r'name="form_token" value="([^"]+)"', page.text)
    if match is None:
        raise SystemExit(f"the public page gave no form token ({page.status_code})")
    return match.group(1)


async def _poster(
    base_url: str,
    index: int,
    stop_at: float,
    statuses: Counter[int],
    forwarded_for: list[str] | None,
) -> None:
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=60,
        trust_env=False,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    ) as client:
        first = forwarded_for[index % len(forwarded_for)] if forwarded_for else ""
        token = await _form_token(client, {"X-Forwarded-For": first} if first else {})
        sent = 0
        while time.monotonic() < stop_at:
            headers = {}
            if forwarded_for:
                spread = (index + sent * 7919) % len(forwarded_for)  # 7919: prime, walks them all
                headers["X-Forwarded-For"] = forwarded_for[spread]
            try:
                answer = await client.post(
                    f"/callnow/{PROFILE}",
                    data={
                        "form_token": token,
                        "name": "Bench Visitor",
                        "number": number(index * 100_000 + sent),
                    },
                    headers=headers,
                )
                statuses[answer.status_code] += 1
            except httpx.HTTPError:
                statuses[-1] += 1
            sent += 1


def post_closed_loop(
    base_url: str,
    clients: int,
    seconds: float,
    forwarded_for: list[str] | None = None,
) -> tuple[dict[int, int], float, float, float]:
    """`clients` connections, each posting the form as soon as its last answer came, for
    `seconds`. Returns the answers by status (-1: transport error), when the posting started
    and ended (time.monotonic(), the same clock in every process on Linux), and the CPU
    seconds this (client) process used meanwhile: near a whole core, the client is the limit."""
    statuses: Counter[int] = Counter()
    cpu_before = time.process_time()

    async def run() -> tuple[float, float]:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(_poster(base_url, i, stop_at, statuses, forwarded_for) for i in range(clients))
        )
        return started, time.monotonic()

    started, ended = asyncio.run(run())
    return dict(statuses), started, ended, time.process_time() - cpu_before


def probe_every(
    base_url: str, paths: list[str], interval_s: float, start_at: float, stop_at: float
) -> list[tuple[str, float, float]]:
    """From `start_at` to `stop_at`, GET each path every `interval_s` (one connection per path,
    one after the other); returns (path, when the answer came, seconds it took) per probe.
    A probe that takes longer than the interval delays the next one: no probe is skipped."""
    clients = {path: httpx.Client(base_url=base_url, timeout=60, trust_env=False) for path in paths}
    probes: list[tuple[str, float, float]] = []
    time.sleep(max(0.0, start_at - time.monotonic()))
    try:
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            for path, client in clients.items():
                sent = time.monotonic()
                # A failed probe counts by its time, as a visitor would feel it.
                with contextlib.suppress(httpx.HTTPError):
                    client.get(path)
                answered = time.monotonic()
                probes.append((path, answered, answered - sent))
            next_at += interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        for client in clients.values():
            client.close()
    return probes


def post_closed_loop_at(
    start_at: float, base_url: str, clients: int, seconds: float, forwarded_for: list[str]
) -> tuple[dict[int, int], float, float, float]:
    """`post_closed_loop`, starting at `start_at` (time.monotonic())."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    return post_closed_loop(base_url, clients, seconds, forwarded_for)
