"""Status webhooks against a real HTTP receiver on 127.0.0.1: signature, retries, order."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from callnow.domain.request_state import RequestState
from callnow.domain.webhook_url import InvalidWebhookUrl, check_webhook_url
from callnow.store import requests as request_store
from callnow.store import webhooks as store
from callnow.store.models import Tenant, WebhookDelivery, utcnow
from callnow.webhooks.retry import RetryPolicy
from callnow.webhooks.sender import WebhookSender
from callnow.webhooks.signing import verify
from tests.support.waiting import until
from tests.support.world import queued_request
from tests.web.helpers import all_requests, form_token, post_form
from tests.web.test_portal import log_in

S = RequestState


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200), and remembers what came."""

    url: str
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hang: threading.Event | None = None

    def states(self) -> list[str]:
        return [r.payload["request"]["state"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            me = box[0]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            me.received.append(Received(self.path, dict(self.headers.items()), body))
            if me.hang is not None:
                me.hang.wait(10)
            status = me.script.pop(0) if me.script else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    if box[0].hang is not None:
        box[0].hang.set()
    server.shutdown()
    server.server_close()


class Clock:
    """The sender's clock, moved by the test: retries are due when the test says so."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def sender(world, clock: Clock, **kwargs) -> WebhookSender:
    policy = kwargs.pop("policy", RetryPolicy(first_delay=timedelta(seconds=10), jitter=0))
    return WebhookSender(
        world.sessions, policy=policy, clock=clock, rand=random.Random(1), **kwargs
    )


async def drain(s: WebhookSender) -> int:
    """Run passes until nothing is due now; returns the attempts made."""
    total = 0
    while sent := await s.run_once():
        total += sent
    return total


def set_url_in_portal(world, url: str) -> str:
    log_in(world)
    page = world.client.get("/portal/webhooks")
    response = world.client.post(
        "/portal/webhooks",
        data={"csrf": form_token(page.text, "csrf"), "op": "set", "scope": "owner", "url": url},
    )
    assert response.status_code == 200, response.text
    match = re.search(r'<code id="new-secret">([^<]+)</code>', response.text)
    assert match, "the secret is shown once"
    return match.group(1)


def new_request(world, callnow_id="alice", number="0290375678"):
    assert post_form(world, callnow_id, name="Mary", number=number).status_code == 303
    return all_requests(world)[-1]


def move(world, token: str, *states: RequestState) -> None:
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, token)
        for state in states:
            request_store.move(request, state, f"to {state}")


def deliveries(world) -> list[WebhookDelivery]:
    with world.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def test_each_state_change_is_posted_signed_with_its_delivery_id(world, receiver):
    secret = set_url_in_portal(world, receiver.url)
    assert secret.startswith("whsec_")
    assert secret not in world.client.get("/portal/webhooks").text  # shown once only
    request = new_request(world)
    clock = Clock()
    assert await drain(sender(world, clock)) == 2
    assert receiver.states() == ["received", "queued"]
    for hit in receiver.received:
        assert hit.path == "/hook"
        assert hit.headers["Content-Type"] == "application/json"
        assert verify(secret, hit.body, hit.headers["X-CallNow-Signature"])
        assert not verify("whsec_wrong", hit.body, hit.headers["X-CallNow-Signature"])
        assert hit.headers["X-CallNow-Signature"].startswith("sha256=")
        assert hit.headers["X-CallNow-Delivery"] == hit.payload["delivery_id"]
        assert int(hit.headers["X-CallNow-Timestamp"]) == int(clock.now.timestamp())
    queued = receiver.received[1].payload
    assert queued["event"] == "request.state_changed"
    assert queued["request"] == {
        "token": request.token,
        "callnow_id": "alice",
        "state": "queued",
        "reason": "default",
        "at": queued["request"]["at"],
        "number": "+61290375678",
        "caller_name": "Mary",
    }
    assert datetime.fromisoformat(queued["request"]["at"]).tzinfo is not None
    assert all(
        d.delivered_at and d.attempts == 1 and d.last_status == 200 for d in deliveries(world)
    )


async def test_a_receiver_answering_500_gets_the_same_delivery_again_later(world, receiver):
    set_url_in_portal(world, receiver.url)
    receiver.script = [500]
    new_request(world)
    clock = Clock()
    s = sender(world, clock)
    assert await drain(s) == 1  # "received" failed; "queued" waits behind it
    first = deliveries(world)[0]
    assert (first.attempts, first.last_status, first.last_error) == (1, 500, "HTTP 500")
    assert first.next_attempt_at == clock.now + timedelta(seconds=10)
    assert await drain(s) == 0  # not before its time
    clock.advance(seconds=10)
    assert await drain(s) == 2
    assert receiver.states() == ["received", "received", "queued"]
    ids = [r.headers["X-CallNow-Delivery"] for r in receiver.received]
    assert ids[0] == ids[1] != ids[2]
    first = deliveries(world)[0]
    assert (first.attempts, first.last_status, first.last_error) == (2, 200, "")
    page = world.client.get("/portal/webhooks")
    assert first.delivery_id in page.text and "HTTP 200" in page.text


async def test_order_per_request_is_kept_through_failures(world, receiver):
    set_url_in_portal(world, receiver.url)
    one = new_request(world)
    two = new_request(world, number="0290375679")
    move(world, one.token, S.CALLING_OWNER, S.OWNER_DECLINED)
    receiver.script = [503, 503]  # the first two attempts fail, whichever they are
    clock = Clock()
    s = sender(world, clock)
    for _ in range(8):
        await drain(s)
        clock.advance(minutes=5)
    by_request: dict[str, list[str]] = {}
    for hit in receiver.received:
        by_request.setdefault(hit.payload["request"]["token"], []).append(
            hit.payload["request"]["state"]
        )
    delivered = {t: [x for i, x in enumerate(v) if x not in v[:i]] for t, v in by_request.items()}
    assert delivered[one.token] == ["received", "queued", "calling_owner", "owner_declined"]
    assert delivered[two.token] == ["received", "queued"]
    assert all(d.delivered_at is not None for d in deliveries(world))


async def test_after_a_day_a_delivery_is_given_up_and_the_next_one_goes(world, receiver):
    set_url_in_portal(world, receiver.url)
    receiver.script = [500] * 100
    new_request(world)
    clock = Clock()
    policy = RetryPolicy(first_delay=timedelta(minutes=30), give_up_after=timedelta(hours=24))
    s = sender(world, clock, policy=policy)
    for _ in range(60):
        await drain(s)
        clock.advance(hours=1)
    first, second = deliveries(world)
    assert first.gave_up_at is not None and first.delivered_at is None
    assert first.attempts >= 5  # 30 min, 1 h, 1 h … until the day is over
    assert second.attempts >= 1  # only tried once the first was given up
    assert receiver.states()[: first.attempts] == ["received"] * first.attempts
    assert "given up" in world.client.get("/portal/webhooks").text


async def test_a_slow_receiver_times_out_and_is_retried(world, receiver):
    set_url_in_portal(world, receiver.url)
    receiver.hang = threading.Event()
    new_request(world)
    clock = Clock()
    await sender(world, clock, timeout_s=0.2).run_once()
    first = deliveries(world)[0]
    assert first.delivered_at is None and first.last_status is None
    assert "Timeout" in first.last_error
    assert first.next_attempt_at > clock.now


async def test_the_run_loop_sends_and_stops(world, receiver):
    import asyncio

    set_url_in_portal(world, receiver.url)
    new_request(world)
    stop = asyncio.Event()
    task = asyncio.create_task(WebhookSender(world.sessions, poll_s=0.02).run(stop))
    await until(lambda: all(d.delivered_at for d in deliveries(world)))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert receiver.states() == ["received", "queued"]


def test_owner_and_tenant_endpoints_each_get_every_event_of_their_requests(world, receiver):
    set_url_in_portal(world, receiver.url + "?who=owner")
    with world.sessions() as session, session.begin():
        alice_tenant = session.scalars(select(Tenant).where(Tenant.name == "Alice Pty")).one()
        store.set_tenant_url(session, alice_tenant.id, receiver.url + "?who=tenant")
    new_request(world, "bob")  # another owner and tenant: nothing for alice's endpoints
    assert deliveries(world) == []
    request = new_request(world)
    rows = deliveries(world)
    assert len(rows) == 4  # received + queued, for two endpoints
    assert {d.request_id for d in rows} == {request.id}
    with world.sessions() as session, session.begin():
        # An explicit enqueue after the listener did it adds nothing.
        loaded = request_store.by_token(session, request.token)
        assert store.enqueue_for_event(session, loaded, loaded.events[-1]) == 0


def test_an_endpoint_set_after_a_request_came_gets_its_later_events(world, receiver):
    # All on one connection: what was looked up for the request before must not be reused.
    with world.sessions() as session, session.begin():
        request = queued_request(session, "alice", "+61290375678")
    assert deliveries(world) == []
    with world.sessions() as session, session.begin():
        alice_tenant = session.scalars(select(Tenant).where(Tenant.name == "Alice Pty")).one()
        store.set_tenant_url(session, alice_tenant.id, receiver.url)

    move(world, request.token, S.CALLING_OWNER)

    rows = deliveries(world)
    assert [(d.request_id, d.payload["request"]["state"]) for d in rows] == [
        (request.id, S.CALLING_OWNER.value)
    ]


async def test_a_cleared_webhook_stops_new_deliveries_and_gives_up_pending_ones(world, receiver):
    set_url_in_portal(world, receiver.url)
    new_request(world)
    page = world.client.get("/portal/webhooks")
    cleared = world.client.post(
        "/portal/webhooks",
        data={"csrf": form_token(page.text, "csrf"), "op": "clear", "scope": "owner"},
    )
    assert cleared.status_code == 303
    new_request(world, number="0290375679")
    assert len(deliveries(world)) == 2  # only the first request's
    assert await drain(sender(world, Clock())) == 2
    assert receiver.received == []
    assert all(
        d.gave_up_at and d.last_error == "the endpoint was removed" for d in deliveries(world)
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "http://user:secret@example.com/hook",
        "https://token@example.com/hook",
        "http:///nohost",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "",
    ],
)
def test_webhook_urls_that_are_not_plain_http_are_refused(url):
    with pytest.raises(InvalidWebhookUrl):
        check_webhook_url(url)


def test_plain_http_and_loopback_urls_are_allowed():
    assert check_webhook_url(" https://example.com/h?x=1 ") == "https://example.com/h?x=1"
    assert check_webhook_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"


def test_the_portal_refuses_a_url_with_credentials_and_keeps_the_old_one(world, receiver):
    set_url_in_portal(world, receiver.url)
    page = world.client.get("/portal/webhooks")
    response = world.client.post(
        "/portal/webhooks",
        data={
            "csrf": form_token(page.text, "csrf"),
            "op": "set",
            "scope": "owner",
            "url": "https://me:pw@example.com/",
        },
    )
    assert response.status_code == 422
    assert "user name or password" in response.text
    assert receiver.url in world.client.get("/portal/webhooks").text
    tenant = world.client.post(
        "/portal/webhooks",
        data={
            "csrf": form_token(page.text, "csrf"),
            "op": "set",
            "scope": "tenant",
            "url": "http://x.example/",
        },
    )
    assert tenant.status_code == 403  # an owner is not the tenant's admin
    no_csrf = world.client.post("/portal/webhooks", data={"op": "clear", "scope": "owner"})
    assert no_csrf.status_code == 400


def test_retry_delays_grow_are_capped_and_end_after_a_day():
    policy = RetryPolicy(jitter=0)
    start = utcnow()
    delays = [policy.next_attempt(start, n, start) - start for n in range(1, 12)]
    assert delays[:4] == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert max(delays) == timedelta(hours=1)
    assert policy.next_attempt(start, 10, start + timedelta(hours=23, minutes=1)) is None
    assert policy.next_attempt(start, 3, start + timedelta(hours=23)) is not None
    jittery = RetryPolicy(jitter=0.5)
    for seed in range(20):
        at = jittery.next_attempt(start, 1, start, random.Random(seed))
        assert timedelta(seconds=5) <= at - start <= timedelta(seconds=10)


def test_a_tenant_admin_sets_the_tenant_webhook_beside_their_own(world, receiver):
    from callnow.store.models import User

    with world.sessions() as session, session.begin():
        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        alice.role = "tenant_admin"
    log_in(world)
    page = world.client.get("/portal/webhooks")
    assert "For every request of my tenant" in page.text
    response = world.client.post(
        "/portal/webhooks",
        data={
            "csrf": form_token(page.text, "csrf"),
            "op": "set",
            "scope": "tenant",
            "url": receiver.url + "?who=tenant",
        },
    )
    assert response.status_code == 200
    assert 'id="new-secret"' in response.text
    request = new_request(world)
    rows = deliveries(world)
    assert len(rows) == 2 and {d.request_id for d in rows} == {request.id}
    with world.sessions() as session:
        tenant_id = session.scalars(select(Tenant.id).where(Tenant.name == "Alice Pty")).one()
        assert store.tenant_endpoint(session, tenant_id).url == receiver.url + "?who=tenant"
        assert store.owner_endpoint(session, alice.id) is None
