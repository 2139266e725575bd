"""The metrics module: label values stay bounded whatever they are given; a listener serves it."""

from __future__ import annotations

import httpx

from callnow.metrics import OTHER, Metrics
from tests.support.ports import free_port


def _label_values(metrics: Metrics) -> set[str]:
    return {
        value
        for family in metrics.registry.collect()
        for sample in family.samples
        for key, value in sample.labels.items()
        if key != "le"
    }


def test_values_outside_the_fixed_lists_become_other() -> None:
    metrics = Metrics("web")
    metrics.request_taken("web", "+61290375678")
    metrics.request_taken("Mary Smith", "accept")
    metrics.refused("mary")
    metrics.refused("per_source")
    metrics.callback_ended("req-42")
    metrics.leg_ended("owner", "john", setup_s=0.5, duration_s=3.0)
    metrics.ng_request("offer 0412345678", 0.001, timed_out=False)
    metrics.ng_request("delete", 1.0, timed_out=True)
    metrics.watch_outbox("Mail 7", lambda: 3)
    assert _label_values(metrics) == {
        "web", OTHER, "accept", "per_source", "owner", "delete",
    }  # fmt: skip


def test_trunk_registrations_are_a_gauge_per_configured_trunk_name() -> None:
    metrics = Metrics("engine")
    states = [("carrier", True), ("backup-2", False), ("+61290375678", True)]
    metrics.watch_trunk_registrations(["carrier", "backup-2"], lambda: states)
    gauge = {
        sample.labels["trunk"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "callnow_trunk_registered"
    }
    # A configured name is shown as it is (digits and `-` too); nothing else ever is.
    assert gauge == {"carrier": 1.0, "backup-2": 0.0, OTHER: 1.0}


def test_a_failing_scrape_time_source_is_left_out_not_fatal() -> None:
    metrics = Metrics("engine")

    def broken() -> tuple[int, float]:
        raise RuntimeError("database down")

    metrics.watch_queue(broken)
    metrics.watch_outbox("webhook", lambda: 5)
    samples = {s.name: s.value for f in metrics.registry.collect() for s in f.samples}
    assert samples["callnow_outbox_backlog"] == 5
    assert "callnow_queue_depth" not in samples


def test_the_owners_held_after_a_busy_phone_are_shown() -> None:
    metrics = Metrics("engine")
    metrics.watch_owners_held(lambda: 3)
    samples = {s.name: s.value for f in metrics.registry.collect() for s in f.samples}
    assert samples["callnow_owners_held"] == 3


def test_the_listener_serves_the_registry_and_stops() -> None:
    metrics = Metrics("engine")
    metrics.claims.inc(2)
    port = free_port()
    listener = metrics.serve("127.0.0.1", port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        listener.stop()
    assert "callnow_claims_total 2.0" in text


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    import json
    import re
    from pathlib import Path

    metrics = Metrics("engine")
    metrics.watch_queue(lambda: (0, 0.0))
    metrics.watch_pool("web", lambda: (0, 1))
    metrics.watch_outbox("webhook", lambda: 0)
    metrics.watch_trunk_registrations(["main"], lambda: [("main", True)])
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    exposed = {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in suffixes[family.type]
    }
    dashboard = json.loads(Path("ops/grafana-callnow.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"callnow_[a-z_]+", target["expr"])
    }
    assert used and used - exposed == set()
