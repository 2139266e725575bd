"""A flood of form posts and a health probe, each from a process of its own.

A client thread in the served app's own interpreter competes with the app for the interpreter
lock. When 64 such threads each built their `httpx.Client` (an SSL context loading the CA
bundle: ~50 ms of CPU apiece) as a flood started, the app's event loop stood still for more than
a second and so did the probe's own thread: a test measured its clients, not the service. Here
the posting clients run in one process and the probe in another, as a real flood meets the
service: from outside. Both build their clients first and start together.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from tests.web.helpers import form_token

# Spawning a process and importing the clients takes a few seconds on a loaded machine.
READY_TIMEOUT_S = 120
FLOOD_TIMEOUT_S = 240


@dataclass(frozen=True)
class FloodOutcome:
    statuses: list[int]  # one per post, -1 for a transport error
    probes: list[tuple[float, int]]  # (seconds the answer took, status), -1 for no answer


def flood_with_probe(
    base: str,
    page: str,
    numbers: list[str],
    clients: int,
    probe: str,
    probe_every_s: float = 0.1,
) -> FloodOutcome:
    """Post the form at `page` once per number from `clients` connections (each reads its form
    token first), while GET `probe` is timed every `probe_every_s` from the moment the posting
    starts until it is done."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(3)
    stop = context.Event()
    results: Any = context.Queue()
    poster = context.Process(
        target=_post, args=(base, page, numbers, clients, ready, results), daemon=True
    )
    prober = context.Process(
        target=_probe, args=(base, probe, probe_every_s, ready, stop, results), daemon=True
    )
    poster.start()
    prober.start()
    try:
        ready.wait(READY_TIMEOUT_S)
        statuses = _result(results, "statuses", FLOOD_TIMEOUT_S)
        stop.set()
        probes = _result(results, "probes", 60)
    finally:
        stop.set()
        for process in (poster, prober):
            process.join(10)
            if process.is_alive():
                process.kill()
    return FloodOutcome(statuses=statuses, probes=probes)


def _result(results: Any, name: str, timeout_s: float) -> Any:
    try:
        got, value = results.get(timeout=timeout_s)
    except queue.Empty:
        raise AssertionError(f"no {name} from the flood's processes") from None
    assert got == name, got
    return value


def _post(base: str, page: str, numbers: list[str], clients: int, ready: Any, results: Any) -> None:
    connections = [httpx.Client(base_url=base, timeout=30) for _ in range(clients)]

    def post_share(client_number: int) -> list[int]:
        client = connections[client_number]
        statuses = []
        token = form_token(client.get(page).text)
        for number in numbers[client_number::clients]:
            try:
                answer = client.post(
                    page, data={"form_token": token, "name": "Flood", "number": number}
                )
                statuses.append(answer.status_code)
            except httpx.HTTPError:
                statuses.append(-1)
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        ready.wait(READY_TIMEOUT_S)
        shares = list(pool.map(post_share, range(clients)))
    for client in connections:
        client.close()
    results.put(("statuses", [status for share in shares for status in share]))


def _probe(base: str, path: str, every_s: float, ready: Any, stop: Any, results: Any) -> None:
    probes: list[tuple[float, int]] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        ready.wait(READY_TIMEOUT_S)
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.get(path).status_code
            except httpx.HTTPError:
                status = -1
            probes.append((time.monotonic() - started, status))
            stop.wait(every_s)
    results.put(("probes", probes))
