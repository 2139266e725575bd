"""Limits that survive a restart on the embedded default (no Redis), and floods that ask for
proof instead of hiding the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from callnow.config import AbuseSettings
from callnow.domain.request_state import RequestState
from callnow.services.throttle import Throttle
from callnow.store import audit, limit_counters, page_alerts
from callnow.store.models import CallRequest, PageAlert, User, WebhookDelivery
from callnow.store.webhooks import set_owner_url
from tests.web.helpers import all_requests, form_token, set_profile


def _finish_all_requests(world) -> None:
    """End every request, so the next one for the same number is new (not the open one)."""
    with world.sessions() as session, session.begin():
        session.execute(update(CallRequest).values(state=RequestState.COMPLETED.value))


def _post(client: TestClient, callnow_id: str, number: str):
    page = client.get(f"/callnow/{callnow_id}")
    return client.post(
        f"/callnow/{callnow_id}",
        data={"form_token": form_token(page.text), "name": "Mary", "number": number},
    )


def test_the_per_number_limit_holds_across_a_restart_of_the_app_on_sqlite_without_redis(
    sqlite_url, tmp_path
):
    from callnow.compose import create_app
    from callnow.config import Settings, WebSettings
    from callnow.store.db import make_engine, make_session_factory, transaction
    from tests.support.world import World, empty_database, seed_two_owners

    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        demo_data=False,
        web=WebSettings(secret_key="test-secret-" + "x" * 32, public_base_url="http://testserver"),
    )
    assert settings.abuse.storage_url == "database://"  # the default: no Redis, no memory
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        seed_two_owners(session)
    victim = "0290371234"
    try:
        statuses = []
        for run in range(2):  # the service, then the same service after a restart
            app = create_app(settings)
            with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
                world = World(settings=settings, client=client, sessions=sessions)
                for page in ("alice", "bob") if run == 0 else ("alice", "bob", "alice"):
                    statuses.append(_post(client, page, victim))
                    _finish_all_requests(world)
            app.state.engine.dispose()
        # 3 owner calls a day for one number, whichever page and however many restarts.
        assert [r.status_code for r in statuses] == [303, 303, 303, 429, 429]
        assert len(all_requests(world)) == 3
    finally:
        engine.dispose()
        empty_database(sqlite_url)


def test_database_counters_are_counted_again_by_a_new_throttle(world):
    """Two throttles on one database (a restart, or two processes) count together."""
    first, second = (Throttle(AbuseSettings(), world.sessions) for _ in range(2))
    calls = [t.owner_call(7, "+61290371111") for t in (first, second, first, second)]
    assert calls == [True, True, True, False]


def test_expired_hits_are_purged_so_the_table_stays_bounded(world):
    throttle = Throttle(AbuseSettings(per_source="2/hour", per_network="100/hour"))
    with world.sessions() as session, session.begin():
        for i in range(50):
            throttle.attempt(f"203.0.113.{i}", session)
        assert limit_counters.count_hits(session) == 100  # one per source, one per network
        # A slice goes once the window has passed its end: an hour's slices last two minutes.
        later = datetime.now(UTC) + timedelta(hours=1, minutes=2, seconds=1)
        assert limit_counters.purge_expired(session, later) == 50 + 1  # and their /24's
        assert limit_counters.count_hits(session) == 0


def test_a_refused_attempt_adds_no_row(world):
    throttle = Throttle(AbuseSettings(per_source="2/hour", per_network="100/hour"))
    with world.sessions() as session, session.begin():
        assert [throttle.attempt("203.0.113.9", session) for _ in range(5)] == [
            True,
            True,
            False,
            False,
            False,
        ]
        assert limit_counters.count_hits(session) == 4


def test_150_quick_posts_leave_the_page_reachable_under_captcha_and_its_owner_alerted(world):
    set_profile(world, "alice", image_validation=False)
    with world.sessions() as session, session.begin():
        owner = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        set_owner_url(session, owner, "https://hooks.example.com/callnow")
    safeguards = world.client.app.state.callnow.safeguards
    # As if every post came from an address of its own: only the page's counters see the flood.
    lifted = "1000/minute"
    object.__setattr__(
        safeguards,
        "throttle",
        Throttle(AbuseSettings(per_source=lifted, per_network=lifted, per_profile=lifted)),
    )
    token = form_token(world.client.get("/callnow/alice").text)
    statuses = []
    for i in range(150):
        answer = world.client.post(
            "/callnow/alice",
            data={"form_token": token, "name": "M", "number": f"029037{i:04d}"},
        )
        statuses.append(answer.status_code)
    # Never hidden: every answer is the page itself (or a new request), none a 404.
    assert 404 not in statuses
    page = world.client.get("/callnow/alice")
    assert page.status_code == 200
    assert "captcha_token" in page.text
    # The automatic check (20 posts) and then the spike hold the CAPTCHA: at most 20 went in.
    assert len(all_requests(world)) <= 20
    with world.sessions() as session:
        alerts = list(session.scalars(select(PageAlert)))
        assert [(a.kind, a.notified_at) for a in alerts] == [("flood", None)]
        assert page_alerts.unnotified(session)[0].id == alerts[0].id  # for the mail outbox
        assert [e.action for e in audit.recent(session)].count("profile.captcha_forced") == 1
        deliveries = list(session.scalars(select(WebhookDelivery)))
        flood = [d for d in deliveries if d.payload["event"] == page_alerts.EVENT_NAME]
        assert len(flood) == 1
        assert flood[0].payload["page"]["callnow_id"] == "alice"
        assert flood[0].request_id is None


def test_the_spike_keeps_the_captcha_on_after_the_posts_stop(world):
    set_profile(world, "alice", image_validation=False)
    safeguards = world.client.app.state.callnow.safeguards
    object.__setattr__(
        safeguards,
        "throttle",
        Throttle(AbuseSettings(spike_captcha="3/hour", captcha_auto_on="1000/minute")),
    )
    token = form_token(world.client.get("/callnow/alice").text)
    for i in range(4):
        world.client.post(
            "/callnow/alice",
            data={"form_token": token, "name": "M", "number": f"02903790{i:02d}"},
        )
    # The adaptive check is off (1,000 a minute): only the spike's alert holds the CAPTCHA on.
    assert "captcha_token" in world.client.get("/callnow/alice").text
    with world.sessions() as session, session.begin():
        session.execute(update(PageAlert).values(until=datetime.now(UTC)))
    assert "captcha_token" not in world.client.get("/callnow/alice").text
