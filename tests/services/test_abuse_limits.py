"""Rate limits and destination policy: what a public page that places paid calls must refuse."""

import time
from datetime import UTC, datetime

import pytest

from callnow.config import AbuseSettings
from callnow.domain.destination_policy import PrefixList
from callnow.services.captcha import CaptchaBook
from callnow.services.intake import Safeguards, Submission, submit
from callnow.services.throttle import (
    SWEEP_INTERVAL_S,
    SweptMemoryStorage,
    Throttle,
    number_block,
    source_network,
)
from callnow.store import profiles, provisioning
from tests.web.helpers import all_requests, form_token

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def safeguards(**limits) -> Safeguards:
    return Safeguards(
        throttle=Throttle(AbuseSettings(**limits)),
        platform_prefixes=PrefixList(blocked=("6149999",)),
        captcha=CaptchaBook("test-secret", 300),
    )


def intake(world, callnow_id, number, source="198.51.100.7", guard=None, name="Mary"):
    guard = guard or safeguards()
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, callnow_id)
        result = submit(
            session, profile, Submission(name, number, source, "test", "web"), NOW, guard
        )
        return result.throttled, result.errors, result.request is not None


def test_networks_are_slash_24_and_slash_64():
    assert source_network("203.0.113.77") == "203.0.113.0/24"
    assert source_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert number_block("+61290375678") == "+61290375"


def test_100_posts_from_one_address_accept_the_configured_number_and_429_the_rest(world):
    page = world.client.get("/callnow/alice")
    token = form_token(page.text)
    statuses = [
        world.client.post(
            "/callnow/alice",
            data={"form_token": token, "name": "Mary", "number": f"02 9037 {5000 + i}"},
        ).status_code
        for i in range(100)
    ]
    assert statuses.count(303) == 10  # per_source default: 10/minute
    assert statuses.count(429) == 90
    assert len(all_requests(world)) == 10


def test_posts_with_a_bad_name_or_number_count_against_their_source_too(world):
    # Their fields are checked before the post is counted, and refused only after it counted.
    token = form_token(world.client.get("/callnow/alice").text)
    bad = [{"name": "Mary", "number": "12"}, {"name": "Ma\x07ry", "number": "02 9037 5000"}]
    refusals = [
        world.client.post("/callnow/alice", data={"form_token": token, **bad[i % 2]}).status_code
        for i in range(10)
    ]
    valid = {"form_token": token, "name": "Mary", "number": "02 9037 5001"}
    assert world.client.post("/callnow/alice", data=valid).status_code == 429
    assert set(refusals) == {422}
    assert all_requests(world) == []


def test_the_429_page_does_not_say_which_limit_fired(world):
    guard = safeguards(per_source="1/minute")
    world.client.app.state.callnow.safeguards = guard
    token = form_token(world.client.get("/callnow/alice").text)
    world.client.post(
        "/callnow/alice", data={"form_token": token, "name": "M", "number": "0290375678"}
    )
    refused = world.client.post(
        "/callnow/alice", data={"form_token": token, "name": "M", "number": "0290375679"}
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "source" not in refused.text.lower() and "address" not in refused.text.lower()


def test_one_victim_number_from_1000_addresses_on_50_pages_rings_owners_at_most_3_times(world):
    with world.sessions() as session, session.begin():
        tenant = provisioning.create_tenant(session, "Many Pages")
        for i in range(50):
            ext = provisioning.create_extension(
                session, tenant, internal_number=f"09{i:04d}", external_number="0290371111"
            )
            profile = provisioning.enable_callnow(session, ext, f"page{i}")
            profile.confirmation_required = True
    guard = safeguards()
    outcomes = [
        intake(
            world, f"page{i % 50}", "0412 345 678", source=f"10.{i // 250}.{i % 250}.1", guard=guard
        )
        for i in range(1000)
    ]
    queued = [r for r in all_requests(world) if r.state == "queued"]
    assert len(queued) == 3
    assert all(r.decision == "confirm" for r in queued)  # none dials the victim unasked
    # The three pages that rang their owner answer later posts with their open request; every
    # post to the other 47 pages is refused.
    assert sum(1 for throttled, _, _ in outcomes if throttled) == 1000 - 3 * 20


def test_many_numbers_in_one_thousand_block_are_throttled_after_the_limit(world):
    guard = safeguards()
    results = [
        intake(world, "alice", f"02 9037 5{i:03d}", source=f"192.0.2.{i}", guard=guard)
        for i in range(50)
    ]
    assert [throttled for throttled, _, _ in results].index(True) == 10  # per_block 10/hour
    assert len(all_requests(world)) == 10


# One sentence for every refused number, naming the countries the page calls back.
REFUSAL = (
    "Sorry, this number cannot be called back from this page. "
    "It calls back mobile and landline numbers in Australia only."
)


@pytest.mark.parametrize(
    "number",
    [
        "+1 900 555 1234",  # US premium
        "+44 909 123 4567",  # UK premium
        "+44 70 1234 5678",  # UK personal numbering
        "+881 6 1234 5678",  # satellite
        "+1 809 555 1234",  # Dominican Republic, +1 but not the USA
        "+53 5 123 4567",  # Cuba
        "0499 999 999",  # a configured platform fraud prefix (+6149999)
        "1900 123 456",  # AU premium
    ],
)
def test_risky_destinations_are_refused_before_anything_is_stored(world, number):
    throttled, errors, stored = intake(world, "alice", number)
    assert not throttled
    assert errors == {"number": REFUSAL}
    assert not stored
    assert all_requests(world) == []


def test_a_tenant_may_allow_another_country(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        profile.extension.tenant.extra_countries = ["GB"]
    assert intake(world, "alice", "+44 20 7946 0958")[2]
    assert intake(world, "alice", "+44 909 123 4567")[1]  # premium stays refused


def test_a_number_on_the_do_not_call_list_is_never_accepted(world):
    from callnow.store import do_not_call

    with world.sessions() as session, session.begin():
        do_not_call.add(session, "+61412345678", "asked by the number's owner")
    throttled, errors, stored = intake(world, "alice", "0412 345 678")
    assert errors == {"number": REFUSAL}
    assert not stored and not throttled


def test_limits_are_shared_through_redis_when_several_processes_serve(world):
    """Two throttles on one Redis (two web workers) count the same victim number together."""
    import random

    from limits.storage import storage_from_string

    url = "redis://127.0.0.1:6379"
    victim = f"+614{random.randrange(10**8):08d}"  # a number no earlier run has counted
    if not storage_from_string(url).check():
        pytest.fail("Redis is needed on 127.0.0.1:6379 for this test")
    worker_a = Throttle(AbuseSettings(storage_url=url))
    worker_b = Throttle(AbuseSettings(storage_url=url))
    page = random.randrange(10**9)  # and a page no earlier run has counted
    calls = [worker.owner_call(page, victim) for worker in (worker_a, worker_b) * 3]
    assert calls == [True, True, True, False, False, False]


def test_in_process_counters_sweep_expired_entries_every_ten_seconds_not_after_each_hit():
    throttle = Throttle(AbuseSettings(storage_url="memory://"))
    counters = throttle._limiter.storage
    counters.timer.cancel()  # as if the last sweep had just run
    counters.timer.join()

    assert throttle.attempt("198.51.100.7")

    assert isinstance(counters, SweptMemoryStorage)
    assert counters.timer.interval == SWEEP_INTERVAL_S
    assert counters.timer.daemon  # a pending sweep never holds up the process's exit


def test_a_window_that_has_passed_allows_again_before_any_sweep_ran():
    throttle = Throttle(AbuseSettings(storage_url="memory://", per_source="1/second"))

    assert throttle.attempt("198.51.100.7")
    assert not throttle.attempt("198.51.100.7")
    time.sleep(1.05)

    assert throttle.attempt("198.51.100.7")
    assert throttle._limiter.storage.timer.is_alive()  # the first sweep is still 10 s away
