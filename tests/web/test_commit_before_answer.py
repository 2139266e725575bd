"""A route's writes are committed before its answer leaves.

TestClient waits for the whole ASGI call, teardown included, so it cannot see an answer that
left before the commit. These tests check the route table, and serve the app with uvicorn on a
real socket while every commit is slowed down: a client following a 303 at once must find what
the 303 points at.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import event

from tests.support.http_server import served
from tests.web.helpers import all_requests, set_profile

SLOW_COMMIT_S = 0.4


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)  # an included router
        if nested is not None:
            yield from _api_routes(nested.routes)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def test_no_route_depends_on_a_generator_that_ends_after_the_answer(world: Any) -> None:
    """A dependency with a `yield` in FastAPI's default ("request") scope runs the code after
    its yield - a commit - once the response has been sent."""
    late = []
    routes = list(_api_routes(world.client.app.routes))
    assert len(routes) > 40  # every router was walked
    for route in routes:
        for dependant in _dependants(route.dependant):
            call = dependant.call
            yields = inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)
            if yields and dependant.scope != "function":
                late.append(f"{','.join(sorted(route.methods))} {route.path}: {call}")
    assert late == []


@contextmanager
def slow_commits(app: Any) -> Iterator[None]:
    sessions = app.state.callnow.sessions

    def wait(_session: Any) -> None:
        time.sleep(SLOW_COMMIT_S)

    event.listen(sessions, "before_commit", wait)
    try:
        yield
    finally:
        event.remove(sessions, "before_commit", wait)


def test_the_one_step_links_status_page_answers_at_once(world: Any) -> None:
    set_profile(world, "alice", one_step_allowed=True, image_validation=False)
    app = world.client.app
    with served(app) as base, slow_commits(app), httpx.Client(base_url=base) as client:
        placed = client.get("/callnow/alice", params={"name": "Mary", "number": "0290375678"})
        assert placed.status_code == 303
        status = client.get(placed.headers["location"])
        assert status.status_code == 200
    [request] = all_requests(world)
    assert request.number_e164 == "+61290375678"
