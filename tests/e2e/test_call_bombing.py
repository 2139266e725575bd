"""Call-bombing through the real service: one victim number posted 1,000 times from 1,000
addresses on 50 different pages. The owners' phones (one SIPp peer behind every extension) count
the INVITEs that really went out: at most 3, and none to the victim without an owner's consent.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from callnow.compose import create_app
from callnow.config import AbuseSettings, WebSettings
from callnow.store import provisioning
from callnow.store.db import transaction
from callnow.store.models import CallRequest
from tests.web.helpers import form_token

pytestmark = pytest.mark.peers
PAGES = 50
POSTS = 1000


def test_one_victim_number_rings_owners_at_most_three_times(callback_service):
    settings, sessions, owner, trunk = callback_service(
        "answer_info_dtmf.xml", {"digit": "2"}, max_call_s=2, owner_args=("-m", "20")
    )
    owner_phone = owner  # every extension's INVITE lands on this one SIPp phone
    settings = settings.model_copy(
        update={
            # A reverse proxy on loopback tells us each visitor's address.
            "web": WebSettings(
                secret_key=settings.web.secret_key,
                public_base_url="http://testserver",
                trusted_proxies=["127.0.0.0/8"],
            ),
            "abuse": AbuseSettings(),  # the shipped defaults: 3 owner calls per number a day
        }
    )
    with transaction(sessions) as session:
        tenant = provisioning.tenant_by_name(session, "Alice Pty")
        for i in range(PAGES):
            extension = provisioning.create_extension(
                session, tenant, internal_number=f"08{i:04d}", external_number="0290371111"
            )
            provisioning.enable_callnow(session, extension, f"page{i}").image_validation = False
    app = create_app(settings, with_engine=True)
    with TestClient(app, follow_redirects=False, client=("127.0.0.1", 50000)) as client:
        tokens = {i: form_token(client.get(f"/callnow/page{i}").text) for i in range(PAGES)}
        statuses = []
        for n in range(POSTS):
            page = n % PAGES
            response = client.post(
                f"/callnow/page{page}",
                data={"form_token": tokens[page], "name": "Victim", "number": "0412 345 678"},
                headers={"x-forwarded-for": f"10.{n // 250}.{n % 250}.{1 + n % 3}"},
            )
            statuses.append(response.status_code)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as session:
                busy = session.scalar(
                    select(func.count()).where(CallRequest.state.in_(["queued", "calling_owner"]))
                )
            if not busy:
                break
            time.sleep(0.2)
    # The shipped limit is 3 owner calls per number a day, and the phone (taking up to 20
    # calls) saw exactly that many.
    assert len(owner_phone.received("INVITE")) == 3
    assert trunk.received("INVITE") == []  # every owner declined: the victim was never rung
    assert statuses.count(429) >= POSTS - 3 * (POSTS // PAGES)
