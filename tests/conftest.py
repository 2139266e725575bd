"""Shared fixtures. Peer fixtures (rtpengine, SIPp, Kamailio) live in tests/peers/."""

pytest_plugins = [
    "tests.support.world",
    "tests.peers.rtpengine",
    "tests.peers.sipp",
    "tests.peers.kamailio",
]
