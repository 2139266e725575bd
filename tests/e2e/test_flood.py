"""A burst of form posts while a callback is bridged: nothing freezes, the call is billed once.

The service is served by uvicorn on a real socket with its engine in a child process (the
default, on SQLite too: there the flood's writers and the child's take turns on the file lock,
the engine's first, and its records must land), real SIPp phones and rtpengine. Every abuse
limit is lifted so that each post does the whole intake; the posts go to another owner's page
that confirms on the web, so they queue without ringing anyone. The posting clients and the
health probe run in processes of their own (`tests/support/flood.py`): in the service's
interpreter they would compete with it for the interpreter lock, and the test would time them
rather than the service.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from sqlalchemy import select

from callnow.compose import create_app
from callnow.store.billing_models import ChargeRow
from callnow.store.db import transaction
from callnow.store.models import CallLeg, CallRequest, Profile
from tests.e2e.conftest import wait_until_finished
from tests.support.flood import flood_with_probe
from tests.support.http_server import served
from tests.support.limits import LIFTED
from tests.support.world import seed_bob
from tests.web.helpers import form_token

CLIENTS = 64
POSTS = 1000
# What issue 17 asks: health answered within 2 s throughout. The defect this guards against froze
# health for minutes; a bound, not a speed target (bench/flood.py measures the p99).
HEALTH_LIMIT_S = 2.0


def _seed_bob_confirming_on_the_web(sessions) -> None:
    with transaction(sessions) as session:
        seed_bob(session)
    with transaction(sessions) as session:
        bob = session.scalars(select(Profile).where(Profile.callnow_id == "bob")).one()
        bob.confirm_on_web = True
        bob.image_validation = False


def _visitor_leg_answered(sessions) -> bool:
    with sessions() as session:
        legs = session.scalars(select(CallLeg).where(CallLeg.role == "requester")).all()
    return any(leg.answered_at is not None for leg in legs)


@pytest.mark.timeout(300)
def test_a_burst_of_posts_leaves_the_service_answering_and_the_bridged_call_billed_once(
    callback_service, caplog, capfd
):
    settings, sessions, _, _ = callback_service(
        "answer_info_dtmf_relay.xml", {"digit": "1"}, max_call_s=15, abuse=LIFTED
    )
    _seed_bob_confirming_on_the_web(sessions)
    caplog.set_level(logging.WARNING)
    with served(create_app(settings, with_engine=True)) as base:
        with httpx.Client(base_url=base, timeout=30) as visitor:
            page = visitor.get("/callnow/alice")
            placed = visitor.post(
                "/callnow/alice",
                data={
                    "form_token": form_token(page.text),
                    "name": "Mary",
                    "number": "02 9037 5678",
                },
            )
            assert placed.status_code == 303
            deadline = time.monotonic() + 30
            while not _visitor_leg_answered(sessions):
                assert time.monotonic() < deadline, "the callback was not bridged"
                time.sleep(0.1)

        flood = flood_with_probe(
            base,
            "/callnow/bob",
            [f"02 9100 {n:04d}" for n in range(POSTS)],
            CLIENTS,
            probe="/api/v1/health",
        )

        [request_id] = _ids_of(sessions, "alice")
        assert wait_until_finished(sessions, request_id, timeout_s=60) == "completed"

    statuses = flood.statuses
    assert len(statuses) == POSTS
    assert set(statuses) <= {303, 429, 503}, sorted(set(statuses))
    assert statuses.count(303) == len(_ids_of(sessions, "bob"))
    assert flood.probes and {status for _, status in flood.probes} == {200}, flood.probes
    assert max(flood.probes)[0] < HEALTH_LIMIT_S, f"slowest health answer: {max(flood.probes)}"
    with sessions() as session:
        [visitor_leg] = session.scalars(select(CallLeg).where(CallLeg.role == "requester")).all()
        charges = session.scalars(select(ChargeRow)).all()
    assert visitor_leg.answered_at is not None
    assert [charge.call_leg_id for charge in charges] == [visitor_leg.id]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # The engine child logs to the stderr it inherited, not to this process's loggers.
    engine_lines = [line for line in capfd.readouterr().err.splitlines() if _from_engine(line)]
    assert engine_lines, "no line of the engine child's log was seen"
    assert [line for line in engine_lines if _is_error(line)] == []


def _from_engine(line: str) -> bool:
    return "process=engine" in line or '"process": "engine"' in line


def _is_error(line: str) -> bool:
    return any(
        mark in line for mark in ("[error", "[critical", '"level": "error"', '"level": "critical"')
    )


def _ids_of(sessions, callnow_id: str) -> list[int]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CallRequest.id)
                .join(Profile, CallRequest.profile_id == Profile.id)
                .where(Profile.callnow_id == callnow_id)
            )
        )
