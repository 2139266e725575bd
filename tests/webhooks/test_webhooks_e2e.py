"""End to end: a real callback through SIPp peers reports every state to the owner's webhook."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.store import webhooks as store
from callnow.store.models import CallRequest, User
from callnow.webhooks.sender import WebhookSender
from callnow.webhooks.signing import verify
from tests.e2e.conftest import callback_service, submit, wait_until_finished  # noqa: F401
from tests.webhooks.test_webhooks import Clock, drain, receiver  # noqa: F401

pytestmark = pytest.mark.peers


async def test_the_engine_s_state_changes_reach_the_webhook_in_order(
    callback_service,  # noqa: F811
    receiver,  # noqa: F811
):
    settings, sessions, _owner, _trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}
    )
    with sessions() as session, session.begin():
        alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        _, secret = store.set_owner_url(session, alice, receiver.url)
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client)
        with sessions() as session:
            request = session.scalars(select(CallRequest)).one()
        assert wait_until_finished(sessions, request.id) == "completed"
        # The service's own sender delivers them, beside the calls, not in their path.
        deadline = time.monotonic() + 20
        while len(receiver.states()) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert await drain(WebhookSender(sessions, clock=Clock())) == 0  # nothing left behind
    assert receiver.states() == [
        "received",
        "queued",
        "calling_owner",
        "calling_requester",
        "connected",
        "completed",
    ]
    for hit in receiver.received:
        assert verify(secret, hit.body, hit.headers["X-CallNow-Signature"])
        assert hit.payload["request"]["token"] == request.token
