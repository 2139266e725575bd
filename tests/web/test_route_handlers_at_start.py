"""Every route's handler is built at start-up, not on the event loop by its first request."""

import fastapi.routing


def test_the_first_requests_after_start_build_no_route_handler(world, monkeypatch):
    built: list[str] = []
    build = fastapi.routing.get_dependant

    def watched(**arguments):
        built.append(arguments["path"])
        return build(**arguments)

    monkeypatch.setattr(fastapi.routing, "get_dependant", watched)
    paths = ["/api/v1/health", "/portal/login", "/callnow/alice", "/api/provider/v1/tenants"]
    for path in paths:
        assert world.client.get(path).status_code < 500, path
    assert built == []
