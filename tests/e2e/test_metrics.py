"""Prometheus metrics scraped over HTTP during a whole SIPp callback.

The service runs with its metrics listeners on (the web's, and on PostgreSQL the engine child's
own); `/metrics` is read before the request, while the call is bridged and after it ended. The
counters and histograms must move, and no label may carry a number, a name or an id.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.config import MetricsSettings
from callnow.metrics import Metrics
from callnow.store.models import CallRequest
from tests.e2e.conftest import submit, wait_until_finished
from tests.support.ports import free_port

pytestmark = pytest.mark.peers
# A label value is a short lower-case word; `le` (a histogram bucket's bound) is the exception.
WORD = re.compile(r"[a-z_]{1,32}")


def scrape(urls: list[str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of every listener, by name and labels (summed across the processes)."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for url in urls:
        text = httpx.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def total(samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def bad_labels(samples) -> list[str]:
    return [
        f"{name}{{{key}={value!r}}}"
        for (name, labels) in samples
        for key, value in labels
        if key != "le" and not WORD.fullmatch(value)
    ]


@pytest.mark.timeout(120)
def test_metrics_move_during_a_callback_and_carry_no_personal_labels(callback_service):
    settings, sessions, _owner, _trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}, max_call_s=3
    )
    listeners = MetricsSettings(enabled=True, port=free_port(), engine_port=free_port())
    settings = settings.model_copy(update={"metrics": listeners})
    urls = [f"http://127.0.0.1:{listeners.port}/metrics"]
    if settings.engine_in_own_process:
        urls.append(f"http://127.0.0.1:{listeners.engine_port}/metrics")
    metrics = Metrics("web")
    with TestClient(
        create_app(settings, with_engine=True, metrics=metrics), follow_redirects=False
    ) as client:
        before = scrape(urls)
        submit(client)
        with sessions() as session:
            request_id = session.scalars(select(CallRequest.id)).one()
        deadline = time.monotonic() + 30
        while sessions().get(CallRequest, request_id).state != "connected":
            assert time.monotonic() < deadline, "the callback was not bridged"
            time.sleep(0.1)
        during = scrape(urls)
        assert wait_until_finished(sessions, request_id) == "completed"
        after = scrape(urls)

    assert total(before, "callnow_requests_total") == 0
    assert total(during, "callnow_requests_total", channel="web", decision="confirm") == 1
    assert total(during, "callnow_claims_total") == 1
    assert total(during, "callnow_callbacks_in_progress") == 1
    assert total(during, "callnow_queue_depth") == 0
    assert total(during, "callnow_db_pool_connections", pool="web", state="size") > 0
    assert total(during, "callnow_outbox_backlog", outbox="webhook") >= 0
    assert total(after, "callnow_callbacks_in_progress") == 0
    assert total(after, "callnow_callbacks_total", outcome="completed") == 1
    assert total(after, "callnow_legs_total", role="requester", disposition="answered") == 1
    assert total(after, "callnow_legs_total", role="owner", disposition="answered") == 1
    # Histograms: the owner's and the visitor's setup, the bridged call's length, rtpengine.
    assert total(during, "callnow_call_setup_seconds_count") == 0
    assert total(after, "callnow_call_setup_seconds_count", role="owner") == 1
    assert total(after, "callnow_call_setup_seconds_count", role="requester") == 1
    assert total(after, "callnow_call_duration_seconds_sum", role="requester") >= 1
    ng_before = total(during, "callnow_rtpengine_ng_seconds_count")
    assert ng_before >= 2  # offer and answer at least
    assert total(after, "callnow_rtpengine_ng_seconds_count") > ng_before  # delete
    assert total(after, "callnow_rtpengine_ng_timeouts_total") == 0

    # No label carries a number, a name or an id: every exposed sample, and the web's registry.
    assert bad_labels(after) == []
    registry = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
    }
    assert bad_labels(registry) == []
    exposed = str(after)
    for personal in ("Mary", "mary", "alice", "290375678", "+6129037"):
        assert personal not in exposed
