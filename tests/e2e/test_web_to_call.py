"""End to end: a visitor's form → the durable queue → the engine → real SIP peers → records.

SIPp plays the owner's phone (answers, presses 1 by SIP INFO) and the PSTN trunk (answers);
rtpengine anchors the media; the database is SQLite and PostgreSQL in turn. The bridged call is
ended by a short maximum call duration.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.store.billing_models import ChargeRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, RequestEvent
from tests.e2e.conftest import submit, wait_until_finished
from tests.web.helpers import form_token

pytestmark = pytest.mark.peers


def test_a_web_request_becomes_a_bridged_call_with_records_and_one_charge(callback_service):
    settings, sessions, owner, trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}
    )
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        # In this process on SQLite, in a child process on PostgreSQL: running either way.
        assert client.get("/api/v1/health").json()["engine"] == "running"
        status_url = submit(client)
        with sessions() as session:
            request_id = session.scalars(select(CallRequest.id)).one()
        assert wait_until_finished(sessions, request_id) == "completed"
        status = client.get(status_url)
        assert 'data-state="completed"' in status.text

    with sessions() as session:
        states = [
            e.state
            for e in session.scalars(
                select(RequestEvent)
                .where(RequestEvent.request_id == request_id)
                .order_by(RequestEvent.id)
            )
        ]
        legs = {leg.role: leg for leg in session.scalars(select(CallLeg))}
        charges = list(session.scalars(select(ChargeRow)))
    assert states == [
        "received",
        "queued",
        "calling_owner",
        "calling_requester",
        "connected",
        "completed",
    ]
    assert legs["owner"].disposition == "answered"
    assert legs["requester"].disposition == "answered"
    assert legs["requester"].destination == "+61290375678"
    assert legs["requester"].billable_seconds >= 1
    # A local call (same area as 02 9037 1234): 12c flat plus GST, posted exactly once.
    [charge] = charges
    assert (charge.call_leg_id, charge.destination_class) == (legs["requester"].id, "local")
    assert (charge.net_minor, charge.gross_minor) == (12, 13)

    [owner_invite] = owner.received("INVITE")
    assert "61290375678" in owner_invite.header("From")  # the owner sees who is asking
    [trunk_invite] = trunk.received("INVITE")
    assert "<sip:+61290371234@" in trunk_invite.header("From") or "61290371234" in (
        trunk_invite.header("From")
    )
    assert trunk_invite.request_uri.startswith("sip:+61290375678@")


def test_a_declined_request_never_reaches_the_trunk(callback_service):
    settings, sessions, _owner, trunk = callback_service("answer_info_dtmf.xml", {"digit": "2"})
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        status_url = submit(client)
        with sessions() as session:
            request_id = session.scalars(select(CallRequest.id)).one()
        assert wait_until_finished(sessions, request_id) == "owner_declined"
        assert "cannot take your call" in client.get(status_url).text
    assert trunk.received("INVITE") == []
    with sessions() as session:
        assert [leg.role for leg in session.scalars(select(CallLeg))] == ["owner"]
        assert list(session.scalars(select(ChargeRow))) == []


def test_a_number_past_the_web_layer_is_still_refused_before_the_trunk(callback_service):
    """A premium number forced straight into the queue (not through the form) is never dialled."""
    settings, sessions, owner, trunk = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}
    )
    from callnow.domain.request_state import RequestState
    from callnow.store import profiles
    from callnow.store.requests import record_new

    with transaction(sessions) as session:
        profile = profiles.by_callnow_id(session, "alice")
        forced = record_new(
            session,
            profile=profile,
            caller_name="X",
            number_typed="1900 123 456",
            number_e164="+611900123456",
            source_address="test",
            user_agent="",
            channel="api",
            decision="accept",
            reason="forced",
            final_state=RequestState.QUEUED,
            now=datetime.now(UTC),
        )
        request_id = forced.id
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False):
        assert wait_until_finished(sessions, request_id) == "failed"
    assert owner.received("INVITE") == [] and trunk.received("INVITE") == []
    with sessions() as session:
        assert "destination refused" in session.get(CallRequest, request_id).events[-1].reason


def test_a_visitor_cancels_while_the_owners_phone_rings(callback_service):
    settings, sessions, owner, trunk = callback_service("ring_forever.xml", {})
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        status_url = submit(client)
        with sessions() as session:
            request_id = session.scalars(select(CallRequest.id)).one()
        deadline = time.monotonic() + 10
        while not owner.received("INVITE") and time.monotonic() < deadline:
            time.sleep(0.05)
        page = client.get(status_url)
        assert "Cancel my request" in page.text
        cancelled = client.post(f"{status_url}/cancel", data={"form_token": form_token(page.text)})
        assert cancelled.status_code == 303
        assert wait_until_finished(sessions, request_id) == "cancelled"
    assert len(owner.received("CANCEL")) == 1  # the owner's phone stops ringing
    assert trunk.received("INVITE") == []
    with sessions() as session:
        [leg] = session.scalars(select(CallLeg)).all()
        reasons = [e.reason for e in session.get(CallRequest, request_id).events]
    assert (leg.role, leg.disposition) == ("owner", "cancelled")
    assert "the visitor asked to cancel" in reasons
