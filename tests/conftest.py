"""Shared fixtures. Peer fixtures (rtpengine, SIPp, Kamailio, baresip) live in tests/peers/."""

pytest_plugins = [
    "tests.support.world",
    "tests.peers.rtpengine",
    "tests.peers.sipp",
    "tests.peers.kamailio",
    "tests.peers.baresip",
]


def pytest_configure(config) -> None:
    # As the service does: structlog through the standard logging (so caplog sees every line),
    # plain tracebacks without locals.
    from callnow import logs

    logs.configure(level="info")
