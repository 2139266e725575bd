"""Three engines behind a Kamailio front door, sharing PostgreSQL and Redis; one is killed.

Real processes only: three `callnow engine` on 127.0.0.11/12/13, each with the rtpengine it
spawns on its own address; Kamailio (peers/kamailio/front_door.cfg) with the engines as a
dispatcher set probed by OPTIONS; a SIPp owner phone behind the front door (it presses 1 by SIP
INFO, sent along the dialog's route) and a SIPp trunk phone (it talks 2 s, then hangs up with a
BYE along the route). Thirty callbacks are queued; one engine is killed with SIGKILL while it
has calls bridged. Then:

- every request ends: `completed`, or `interrupted` for the killed engine's calls (the crash
  rule: lease run out, never dialled again, its phones hung up by a surviving engine);
- every engine claimed some; nothing is dialled twice (INVITEs counted at the SIPp phones, and
  the legs table); every answered visitor leg is charged exactly once;
- in-dialog requests from the phones (INFO, BYE) went back to the engine that placed the call;
- the front door marked the killed engine down and sends new outside requests to the others.
"""

from __future__ import annotations

import os
import re
import socket
from collections import Counter

import pytest
from sqlalchemy import func, select

from callnow.bootstrap import seed_default_deck
from callnow.domain.request_state import TERMINAL, RequestState
from callnow.store.billing_models import ChargeRow
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallLeg, CallRequest
from tests.peers.kamailio import parse_trace
from tests.support.ports import free_port
from tests.support.scale_out import (
    ENGINE_HOSTS,
    engines_behind,
    queue_requests,
    start_front_door,
    wait_for,
)
from tests.support.world import empty_database, seed_alice

pytestmark = [pytest.mark.peers, pytest.mark.postgres]
CALLBACKS = 30
# Long enough that a live engine starved of CPU on a loaded 2-core machine keeps its leases
# (renewed every third of it); the killed engine's calls end this long after the kill.
LEASE_S = 10
ENGINE_SETTINGS = {
    "CALLNOW_ENGINE__LEASE_S": str(LEASE_S),
    "CALLNOW_ENGINE__POLL_INTERVAL_S": "0.2",
    # Four callbacks at a time per engine: enough to overlap, little enough for two cores.
    "CALLNOW_ENGINE__MAX_CONCURRENT_CALLS": "4",
    "CALLNOW_ENGINE__MAX_CALLS_PER_EXTENSION": "20",
    "CALLNOW_ENGINE__MAX_CALLS_PER_TENANT": "20",
    "CALLNOW_SIP__OWNER_RING_TIMEOUT_S": "30",
    "CALLNOW_SIP__VISITOR_RING_TIMEOUT_S": "30",
    # The visitor hangs up after 2 s; this only bounds a call whose BYE was lost.
    "CALLNOW_SIP__MAX_CALL_DURATION_S": "20",
}


def outside_options(front_door_port: int, user: str = "callnow") -> str:
    """An OPTIONS from outside (as the PBX would send one) to the front door: the status line
    of the answer, which comes from whichever engine the dispatcher picked."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3)
        me = sock.getsockname()[1]
        tag = os.urandom(4).hex()
        probe = (
            f"OPTIONS sip:{user}@127.0.0.1:{front_door_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:pbx@127.0.0.1:{me}>;tag={tag}\r\n"
            f"To: <sip:{user}@127.0.0.1:{front_door_port}>\r\n"
            f"Call-ID: outside-{tag}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(probe.encode(), ("127.0.0.1", front_door_port))
        while True:
            answer = sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]
            if not answer.startswith("SIP/2.0 1"):  # skip a provisional answer
                return answer


@pytest.mark.timeout(240)
def test_three_engines_behind_kamailio_survive_the_loss_of_one(postgresql_url, sipp_peer, tmp_path):
    db = make_engine(postgresql_url)
    sessions = make_session_factory(db)
    with transaction(sessions) as session:
        seed_alice(session)
        seed_default_deck(session)
    # SIPp counts every message it cannot place as a call of its own (the 408 Kamailio answers
    # to a BYE for the killed engine, say): room for those, and a lifetime for the whole test.
    calls = ("-m", str(3 * CALLBACKS), "-timeout", "200s")
    owner = sipp_peer("rr_answer_info_dtmf.xml", {"digit": "1"}, *calls)
    trunk = sipp_peer("rr_answer_talk_then_bye.xml", {}, *calls)
    addresses = [(host, free_port(host)) for host in ENGINE_HOSTS]
    door = start_front_door(
        tmp_path / "front-door", addresses, pbx=owner.address, trunk=trunk.address
    )
    numbers = [f"+6129037{5000 + i:04d}" for i in range(CALLBACKS)]
    try:
        with engines_behind(
            door,
            addresses,
            trunk=trunk.address,
            database_url=postgresql_url,
            workdir=tmp_path,
            extra=ENGINE_SETTINGS,
        ) as engines:

            def logs() -> str:
                return "\n".join(e.log_text()[-2000:] for e in engines) + door.log_tail()

            # The front door's probes find the engines alive: outside requests get answers.
            wait_for(lambda: all(outside_options(door.port).startswith("SIP/2.0 200")
                                 for _ in engines), 15, "engines answering", logs)  # fmt: skip
            ids = queue_requests(sessions, numbers)

            def states() -> list[tuple[str, str | None]]:
                with sessions() as session:
                    query = select(CallRequest.state, CallRequest.claimed_by).where(
                        CallRequest.id.in_(ids)
                    )
                    return [(state, by) for state, by in session.execute(query)]

            victim = engines[1]

            def victim_bridged_and_work_left() -> bool:
                now = states()
                return any(s == "connected" and by == victim.engine_id for s, by in now) and any(
                    s == "queued" for s, _ in now
                )

            wait_for(victim_bridged_and_work_left, 90, "engine-2 with a bridged call", logs)
            seen = len(door.log_text())  # the probes may have flapped while engines started
            victim.kill()
            wait_for(lambda: f"CNTRACE|ds|down|{victim.uri}" in door.log_text()[seen:], 10,
                     "the front door to mark the killed engine down", logs)  # fmt: skip
            # Outside requests now reach only the live engines.
            assert [outside_options(door.port)[:11] for _ in range(4)] == ["SIP/2.0 200"] * 4

            def all_ended() -> bool:
                return all(RequestState(s) in TERMINAL for s, _ in states())

            wait_for(all_ended, 120, "every request to end", logs)
            # The surviving engines take down the killed engine's legs and post their charges.
            with sessions() as session:

                def legs_open() -> int:
                    return session.scalar(select(func.count()).where(CallLeg.ended_at.is_(None)))

                wait_for(lambda: legs_open() == 0, LEASE_S + 20, "every leg to end", logs)
                session.rollback()
                requests = list(session.scalars(select(CallRequest).where(CallRequest.id.in_(ids))))
                legs = list(session.scalars(select(CallLeg)))
                charged = list(session.scalars(select(ChargeRow.call_leg_id)))
    finally:
        door.stop()
        db.dispose()

    by_engine = Counter((r.claimed_by, r.state) for r in requests)
    # Each engine took some; only the killed engine's calls were interrupted.
    assert {r.claimed_by for r in requests} == {"engine-1", "engine-2", "engine-3"}, by_engine
    assert {r.state for r in requests} <= {"completed", "interrupted"}, by_engine
    interrupted = [r for r in requests if r.state == "interrupted"]
    assert interrupted and {r.claimed_by for r in interrupted} == {"engine-2"}, by_engine
    assert by_engine[("engine-1", "completed")] and by_engine[("engine-3", "completed")], by_engine

    # Nothing dialled twice: one owner INVITE per request, at most one trunk INVITE per number.
    owner_froms = [str(m.header("From")) for m in owner.received("INVITE")]
    trunk_uris = [str(m.request_uri) for m in trunk.received("INVITE")]
    owner_invites = Counter(n for f in owner_froms for n in numbers if n[1:] in f)
    trunk_invites = Counter(n for uri in trunk_uris for n in numbers if n in uri)
    assert owner_invites == Counter(numbers)
    assert max(trunk_invites.values()) == 1
    completed_numbers = {r.number_e164 for r in requests if r.state == "completed"}
    assert completed_numbers <= set(trunk_invites)
    roles = Counter((leg.request_id, leg.role) for leg in legs)
    assert max(roles.values()) == 1
    assert {request_id for request_id, role in roles if role == "owner"} == set(ids)

    # Every answered visitor leg is charged once; nothing else is (the owner's leg is free).
    answered = sorted(leg.id for leg in legs if leg.role == "requester" and leg.answered_at)
    assert len(answered) >= len(completed_numbers)
    assert sorted(charged) == answered

    # The phones' INFO and BYE went to the engine that sent the dialog's INVITE.
    trace = parse_trace(door.log_text())
    engine_of_call = {
        t.call_id: t.peer.split(":")[0]
        for t in trace
        if t.kind == "req" and t.method == "INVITE" and t.peer.split(":")[0] in ENGINE_HOSTS
    }
    phones = {f"127.0.0.1:{owner.port}", f"127.0.0.1:{trunk.port}"}
    from_phones = [
        t for t in trace if t.kind == "req" and t.peer in phones and t.method in ("INFO", "BYE")
    ]
    assert {t.method for t in from_phones} == {"INFO", "BYE"}
    for t in from_phones:
        assert host_of(t.detail) == engine_of_call[t.call_id], t
    assert set(engine_of_call.values()) == set(ENGINE_HOSTS)


def host_of(uri: str) -> str:
    found = re.search(r"sip:(?:[^@;>]*@)?([0-9.]+)", uri)
    return found.group(1) if found else ""


@pytest.fixture(autouse=True)
def _empty(postgresql_url):
    yield
    empty_database(postgresql_url)
