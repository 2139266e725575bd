"""End to end: a request needing web confirmation → an e-mail to a real SMTP server → its
one-click Accept link → the whole callback through SIPp phones; a second click does nothing."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.config import MailSettings
from callnow.store.db import transaction
from callnow.store.models import CallRequest, Profile
from tests.e2e.conftest import submit, wait_until_finished
from tests.support.smtp import text_of

pytestmark = pytest.mark.peers


def test_the_mailed_accept_link_starts_the_callback_once(callback_service, smtp_server):
    mail = MailSettings(
        enabled=True, smtp_port=smtp_server.port, security="none", poll_interval_s=0.2
    )
    settings, sessions, owner, trunk = callback_service("answer.xml", {}, mail=mail)
    with transaction(sessions) as session:
        session.scalars(
            select(Profile).where(Profile.callnow_id == "alice")
        ).one().confirm_on_web = True
    with TestClient(create_app(settings, with_engine=True), follow_redirects=False) as client:
        submit(client)
        with sessions() as session:
            request = session.scalars(select(CallRequest)).one()
        assert (request.state, request.decision) == ("queued", "confirm_web")

        [message] = smtp_server.wait_for(1)
        assert message["To"] == "alice@example.com"
        [accept] = re.findall(r"Accept \(call them back\): (http\S+)", text_of(message))
        assert owner.received("INVITE") == []  # nothing rings before the owner's click

        clicked = client.post(urlsplit(accept).path)
        assert clicked.status_code == 200, clicked.text[:300]
        assert wait_until_finished(sessions, request.id) == "completed"

        again = client.post(urlsplit(accept).path)
        assert again.status_code == 409
    assert len(owner.received("INVITE")) == 1
    [trunk_invite] = trunk.received("INVITE")
    assert trunk_invite.request_uri.startswith("sip:+61290375678@")
    with sessions() as session:
        assert session.get(CallRequest, request.id).claim_count == 1
    assert len(smtp_server.messages()) == 1  # the accepted call mails nothing more
