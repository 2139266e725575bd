"""Crash safety: an engine process killed with SIGKILL at each phase of a callback.

A second engine process is started afterwards. Every request must end in a terminal state
within the lease time plus 10 s, no number may get more INVITEs than the rules allow (counted at
the SIPp peers), and the call legs written before the crash are kept, never duplicated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callnow.bootstrap import seed_default_deck
from callnow.domain.request_state import TERMINAL, RequestState
from callnow.store import profiles
from callnow.store.db import make_engine, make_session_factory, transaction
from callnow.store.models import CallLeg, CallRequest
from callnow.store.requests import record_new
from tests.e2e.conftest import engine_ports_env
from tests.peers.sipp import SippPeer
from tests.support.world import seed_alice

pytestmark = pytest.mark.peers
LEASE_S = 4
CALLNOW = Path(sys.executable).with_name("callnow")


@contextlib.contextmanager
def engine_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with engine_ports_env() as ports:
        env = {**os.environ, **env, **ports}
        with log.open("ab") as out:
            process = subprocess.Popen([str(CALLNOW), "engine"], env=env, stdout=out, stderr=out)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; engine log:\n{log.read_text()[-6000:]}")


def wait_until_running(process: subprocess.Popen[bytes], engine_id: str, log: Path) -> None:
    """Until the engine says it is running: it logs so once its claim loop has started (see
    `EngineRuntime.start`), so from then on it claims what is queued at its next poll."""

    def running() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{engine_id} exited ({process.returncode}):\n{log.read_text()[-6000:]}")
        return f"engine {engine_id} running" in log.read_text(errors="replace")

    wait_for(running, 120, f"{engine_id} to start", log)


@pytest.fixture
def rig(db_url, sipp_peer, tmp_path):
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        seed_alice(session)
        seed_default_deck(session)

    def queue_request(number: str) -> int:
        with transaction(sessions) as session:
            request = record_new(
                session,
                profile=profiles.by_callnow_id(session, "alice"),
                caller_name="Mary",
                number_typed=number,
                number_e164=number,
                source_address="test",
                user_agent="",
                channel="web",
                decision="confirm",
                reason="default",
                final_state=RequestState.QUEUED,
                now=datetime.now(UTC),
            )
            return request.id

    def env_for(owner: SippPeer, trunk: SippPeer) -> dict[str, str]:
        return {
            "CALLNOW_DATABASE_URL": db_url,
            "CALLNOW_DATA_DIR": str(tmp_path),
            "CALLNOW_DEMO_DATA": "false",
            "CALLNOW_WEB__SECRET_KEY": "crash-" + "k" * 40,
            "CALLNOW_SIP__OWNER_URI_TEMPLATE": f"sip:{{internal}}@127.0.0.1:{owner.port}",
            "CALLNOW_SIP__OWNER_RING_TIMEOUT_S": "30",
            "CALLNOW_SIP__REQUESTER_RING_TIMEOUT_S": "30",
            "CALLNOW_SIP__MAX_CALL_DURATION_S": "3",
            "CALLNOW_TRUNK__URI_TEMPLATE": f"sip:{{e164}}@127.0.0.1:{trunk.port}",
            "CALLNOW_ENGINE__LEASE_S": str(LEASE_S),
            "CALLNOW_ENGINE__POLL_INTERVAL_S": "0.2",
        }

    def state_of(request_id: int) -> str:
        with sessions() as session:
            return session.get(CallRequest, request_id).state

    def legs_of(request_id: int) -> list[CallLeg]:
        with sessions() as session:
            return list(session.scalars(select(CallLeg).where(CallLeg.request_id == request_id)))

    yield sessions, queue_request, env_for, state_of, legs_of
    engine.dispose()


# Phase → (owner scenario, trunk scenario, the moment to kill, the state the request ends in).
PHASES = {
    "owner_ringing": ("ring_forever.xml", "answer.xml", "owner_invited", "interrupted"),
    "prompt_playing": ("answer.xml", "answer.xml", "owner_answered", "interrupted"),
    "requester_ringing": (
        "answer_info_dtmf_relay.xml",
        "ring_forever.xml",
        "calling_requester",
        "interrupted",
    ),
    "bridged": ("answer_info_dtmf_relay.xml", "answer.xml", "connected", "interrupted"),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_an_engine_killed_mid_call_never_dials_again(rig, sipp_peer, tmp_path, phase):
    _sessions, queue_request, env_for, state_of, legs_of = rig
    owner_scenario, trunk_scenario, kill_at, final = PHASES[phase]
    owner = sipp_peer(owner_scenario, {"digit": "1"})
    trunk = sipp_peer(trunk_scenario)
    request_id = queue_request("+61290375678")
    log = tmp_path / "engine.log"
    moments = {
        "owner_invited": lambda: len(owner.received("INVITE")) >= 1,
        "owner_answered": lambda: len(owner.received("ACK")) >= 1,
        "calling_requester": lambda: len(trunk.received("INVITE")) >= 1,
        "connected": lambda: state_of(request_id) == "connected",
    }
    with engine_process(env_for(owner, trunk), log) as first:
        wait_for(moments[kill_at], 30, phase, log)
        first.kill()  # SIGKILL: no cleanup of any kind
        first.wait()
    legs_before = {(leg.role, leg.started_at) for leg in legs_of(request_id)}
    killed_at = time.monotonic()
    with engine_process(env_for(owner, trunk), log):
        wait_for(
            lambda: RequestState(state_of(request_id)) in TERMINAL,
            LEASE_S + 10,
            "a terminal state after the crash",
            log,
        )
    assert time.monotonic() - killed_at <= LEASE_S + 10 + 5  # the second engine's start-up
    assert state_of(request_id) == final
    assert len(owner.received("INVITE")) == 1
    assert len(trunk.received("INVITE")) == (1 if phase in ("requester_ringing", "bridged") else 0)
    assert {(leg.role, leg.started_at) for leg in legs_of(request_id)} == legs_before


def test_a_request_claimed_by_an_engine_that_died_before_dialling_is_called_once(
    rig, sipp_peer, tmp_path
):
    sessions, queue_request, env_for, state_of, _legs_of = rig
    owner = sipp_peer("answer_info_dtmf.xml", {"digit": "2"})
    trunk = sipp_peer("answer.xml")
    request_id = queue_request("+61290375678")
    # An engine claimed it and died before writing any leg: its lease simply runs out.
    with transaction(sessions) as session:
        request = session.get(CallRequest, request_id)
        request.claimed_by = "dead-engine"
        request.lease_expires_at = datetime.now(UTC)
        request.claim_count = 1
    log = tmp_path / "engine.log"
    with engine_process(env_for(owner, trunk), log):
        wait_for(
            lambda: RequestState(state_of(request_id)) in TERMINAL,
            LEASE_S + 10,
            "the declined call",
            log,
        )
    assert state_of(request_id) == "owner_declined"
    assert len(owner.received("INVITE")) == 1
    assert trunk.received("INVITE") == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(CallLeg)) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_engines_share_200_queued_requests_and_dial_each_once(rig, sipp_peer, tmp_path):
    sessions, queue_request, env_for, _state_of, _ = rig
    # One SIPp owner phone takes all 200 calls (-m 200) and declines each at once.
    owner = sipp_peer("answer_info_dtmf.xml", {"digit": "2"}, "-m", "200")
    trunk = sipp_peer("answer.xml")
    numbers = [f"+6129037{4000 + i:04d}" for i in range(200)]
    # Five calls at a time per engine keeps two cores answering the peers promptly.
    env = {
        **env_for(owner, trunk),
        "CALLNOW_ENGINE__MAX_CALLS_PER_EXTENSION": "20",
        "CALLNOW_ENGINE__MAX_CONCURRENT_CALLS": "5",
        # Two engines, two rtpengines, SIPp and PostgreSQL share two cores here.
        "CALLNOW_RTPENGINE__TIMEOUT_S": "5",
    }
    log_a, log_b = tmp_path / "engine-a.log", tmp_path / "engine-b.log"
    with (
        engine_process({**env, "CALLNOW_ENGINE__ENGINE_ID": "engine-a"}, log_a) as engine_a,
        engine_process({**env, "CALLNOW_ENGINE__ENGINE_ID": "engine-b"}, log_b) as engine_b,
    ):
        # Queued only once both engines poll the queue: the whole batch takes a few seconds to
        # drain, and on a loaded machine one engine's start-up can take longer than that, so a
        # batch queued earlier may all go to the engine that happened to start first.
        wait_until_running(engine_a, "engine-a", log_a)
        wait_until_running(engine_b, "engine-b", log_b)
        ids = [queue_request(number) for number in numbers]

        def all_finished() -> bool:
            with sessions() as session:
                open_ones = session.scalar(
                    select(func.count()).where(
                        CallRequest.id.in_(ids), CallRequest.state.not_in(list(TERMINAL))
                    )
                )
            return open_ones == 0

        wait_for(all_finished, 240, "all 200 requests to finish", log_a)
    with sessions() as session:
        requests = list(session.scalars(select(CallRequest).where(CallRequest.id.in_(ids))))
    # Declined by the owner, or (on a starved machine) given up on after the owner rang out:
    # either way a terminal state reached by one call.
    assert {r.state for r in requests} <= {"owner_declined", "owner_unreachable"}
    by_engine = {r.claimed_by for r in requests}
    assert by_engine == {"engine-a", "engine-b"}
    invited = [m.header("From") for m in owner.received("INVITE")]
    for number in numbers:
        assert sum(number[1:] in from_ for from_ in invited) == 1, number
    assert trunk.received("INVITE") == []


def test_a_charge_never_posted_before_a_crash_is_posted_once_by_the_next_engine(
    rig, sipp_peer, tmp_path
):
    """The engine died between "requester leg ended" and "charge posted"."""
    from datetime import timedelta

    from callnow.store.billing_models import ChargeRow

    sessions, queue_request, env_for, _, _ = rig
    owner, trunk = sipp_peer("answer.xml"), sipp_peer("answer.xml")
    request_id = queue_request("+61412345678")
    answered = datetime.now(UTC) - timedelta(minutes=5)
    with transaction(sessions) as session:
        request = session.get(CallRequest, request_id)
        for state in ("calling_owner", "calling_requester", "connected", "completed"):
            from callnow.store.requests import move

            move(request, RequestState(state), "before the crash")
        for role, destination in (("owner", "001002"), ("requester", "+61412345678")):
            session.add(
                CallLeg(
                    request_id=request_id,
                    role=role,
                    destination=destination,
                    started_at=answered - timedelta(seconds=5),
                    answered_at=answered,
                    ended_at=answered + timedelta(seconds=61),
                    disposition="answered",
                    billable_seconds=61,
                    sip_code=200,
                )
            )

    def charges() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(ChargeRow))

    log = tmp_path / "engine.log"
    for _ in range(2):  # the second engine start finds the charge already posted
        with engine_process(env_for(owner, trunk), log):
            wait_for(lambda: charges() >= 1, 20, "the swept charge", log)
            time.sleep(0.5)
    assert charges() == 1
    with sessions() as session:
        charge = session.scalars(select(ChargeRow)).one()
    # 61 s of a mobile: 30 s + 6 × 6 s = 66 s at 45c a minute = 49.5c → 50c net, 5c GST.
    assert (charge.billed_s, charge.net_minor, charge.gross_minor) == (66, 50, 55)
    assert owner.received("INVITE") == [] and trunk.received("INVITE") == []


# Phase → (owner scenario, trunk scenario, what each phone expects from the next engine).
HANGUPS = {
    "owner_ringing": ("ring_forever.xml", "answer.xml", "CANCEL", None),
    "prompt_playing": ("answer.xml", "answer.xml", "BYE", None),
    "requester_ringing": ("answer_info_dtmf_relay.xml", "ring_forever.xml", "BYE", "CANCEL"),
    "bridged": ("answer_info_dtmf_relay.xml", "answer.xml", "BYE", "BYE"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("phase", list(HANGUPS))
def test_the_next_engine_takes_down_the_calls_a_killed_engine_left_up(
    rig, sipp_peer, tmp_path, phase
):
    """No phone stays up after a crash: the owner's and the visitor's get their CANCEL or
    BYE from the next engine within the lease time, answered legs keep their answer time,
    and the visitor's answered leg is charged exactly once."""
    from callnow.store.billing_models import ChargeRow

    sessions, queue_request, env_for, state_of, legs_of = rig
    owner_scenario, trunk_scenario, owner_gets, visitor_gets = HANGUPS[phase]
    owner = sipp_peer(owner_scenario, {"digit": "1"})
    trunk = sipp_peer(trunk_scenario)
    request_id = queue_request("+61290375678")
    log = tmp_path / "engine.log"

    def ends_stored(*methods: str) -> bool:
        # The moment to kill: the phones are up and their legs' hangups are stored (the rows
        # are updated a transaction after each INVITE and each answer).
        stored = {leg.role: leg.hangup_method for leg in legs_of(request_id)}
        return [stored.get(role) for role in ("owner", "requester")][: len(methods)] == list(
            methods
        )

    moments = {
        "owner_ringing": lambda: bool(owner.received("INVITE")) and ends_stored("CANCEL"),
        "prompt_playing": lambda: bool(owner.received("ACK")) and ends_stored("BYE"),
        "requester_ringing": lambda: ends_stored("BYE", "CANCEL"),
        "bridged": lambda: state_of(request_id) == "connected" and ends_stored("BYE", "BYE"),
    }
    with engine_process(env_for(owner, trunk), log) as first:
        wait_for(moments[phase], 30, phase, log)
        first.kill()  # SIGKILL: nothing is hung up, nothing more is written
        first.wait()
    assert owner.received(owner_gets) == []
    with engine_process(env_for(owner, trunk), log):
        started = time.monotonic()
        wait_for(lambda: bool(owner.received(owner_gets)), LEASE_S + 5, owner_gets, log)
        if visitor_gets is not None:
            wait_for(lambda: bool(trunk.received(visitor_gets)), LEASE_S + 5, "visitor", log)
        assert time.monotonic() - started <= LEASE_S + 5
        wait_for(lambda: all(leg.ended_at for leg in legs_of(request_id)), 10, "ends", log)

    assert state_of(request_id) == "interrupted"
    assert len(owner.received("INVITE")) == 1
    legs = {leg.role: leg for leg in legs_of(request_id)}
    answered = {role for role, gets in (("owner", owner_gets), ("requester", visitor_gets))
                if gets == "BYE"}  # fmt: skip
    for role, leg in legs.items():
        assert (leg.answered_at is not None) == (role in answered), role
        assert leg.disposition == ("answered" if role in answered else "cancelled"), role
    with sessions() as session:
        charged = list(session.scalars(select(ChargeRow.call_leg_id)))
    # The owner's own leg costs nothing with the default settings; the visitor's, once.
    assert charged == ([legs["requester"].id] if "requester" in answered else [])
