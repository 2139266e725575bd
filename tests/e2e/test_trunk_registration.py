"""`callnow serve`'s engine keeps its trunk registered, and /api/v1/health shows it: registered
after a 401 challenge, unregistered (with the reason) while the registrar is gone, registered
again once it is back (real SIPp registrar, real engine in the web's process)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.config import MetricsSettings, TrunkSettings
from tests.e2e.conftest import callback_service  # noqa: F401
from tests.e2e.test_metrics import scrape
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

PASSWORD = "s3cret-Pa55"
KEYS = {"auth_user": "callnow", "auth_pass": PASSWORD, "expires": "2"}


def trunks_when(client: TestClient, registered: bool, timeout: float = 25.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/api/v1/health")
        assert answer.status_code == 200, answer.text
        trunks = answer.json()["trunks"]
        if trunks and trunks[0]["registered"] is registered:
            assert PASSWORD not in answer.text
            return trunks
        if time.monotonic() > deadline:
            pytest.fail(f"health still says {trunks} after {timeout}s")
        time.sleep(0.1)


def registered_gauge(urls: list[str]) -> dict[str, float]:
    """The registration gauge, from the metrics listener of whichever process runs the engine."""
    return {
        dict(labels)["trunk"]: value
        for (name, labels), value in scrape(urls).items()
        if name == "callnow_trunk_registered"
    }


def test_health_follows_the_trunk_registration_through_a_registrar_restart(
    callback_service,  # noqa: F811
    sipp_peer,
) -> None:
    registrar = sipp_peer("registrar_401.xml", KEYS)
    settings, _sessions, _owner, trunk = callback_service("answer.xml", {})
    settings = settings.model_copy(
        update={
            "trunk": TrunkSettings(
                name="carrier",
                uri_template=f"sip:{{e164}}@127.0.0.1:{trunk.port}",
                username="callnow",
                password=PASSWORD,
                registration=True,
                registrar=f"127.0.0.1:{registrar.port}",
                register_domain="trunk.test",
            ),
            "metrics": MetricsSettings(enabled=True, port=free_port(), engine_port=free_port()),
        }
    )
    # The engine's gauges are on its own listener when it runs in a child process.
    port = settings.metrics.engine_port if settings.engine_in_own_process else settings.metrics.port
    urls = [f"http://127.0.0.1:{port}/metrics"]
    with TestClient(create_app(settings, with_engine=True)) as client:
        assert trunks_when(client, True) == [
            {"name": "carrier", "registered": True, "last_error": None}
        ]
        # The same state as a gauge per trunk name, for alerts.
        assert registered_gauge(urls) == {"carrier": 1.0}
        # The registrar granted 2 s: the refresh is answered, then the registrar exits.
        assert registrar.wait(10) == 0, registrar.diagnostics()
        assert len(registrar.received("REGISTER")) == 3

        down = trunks_when(client, False)
        assert "no answer from the registrar" in down[0]["last_error"]
        assert registered_gauge(urls) == {"carrier": 0.0}

        again = sipp_peer("registrar_401.xml", KEYS, port=registrar.port)
        assert trunks_when(client, True)[0]["last_error"] is None
        assert len(again.received("REGISTER")) >= 2
        assert registered_gauge(urls) == {"carrier": 1.0}
