"""CAPTCHA challenges are signed tokens: showing one writes nothing, answering spends it once,
and spent nonces are forgotten once their tokens have expired anyway."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, inspect, select

from callnow.services.captcha import CaptchaBook
from callnow.store import captcha as spent_captchas
from callnow.store.models import Profile, SpentCaptcha
from tests.web.helpers import form_token, set_profile

TTL = timedelta(seconds=300)


def book(world) -> CaptchaBook:
    return world.client.app.state.callnow.safeguards.captcha


def profile_id(world, callnow_id="alice") -> int:
    with world.sessions() as session:
        return session.scalars(select(Profile.id).where(Profile.callnow_id == callnow_id)).one()


def spent_rows(world) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(SpentCaptcha))


def verify(world, token, answer, profile, now) -> bool:
    with world.sessions() as session, session.begin():
        return book(world).verify(session, token, answer, profile, now)


def test_two_hundred_views_write_no_row(world):
    set_profile(world, "alice", image_validation=True)
    tokens = set()
    for _ in range(200):
        page = world.client.get("/callnow/alice")
        tokens.add(form_token(page.text, "captcha_token"))
    assert len(tokens) == 200
    token = next(iter(tokens))
    assert world.client.get(f"/callnow/alice/captcha/{token}.png").status_code == 200
    assert spent_rows(world) == 0
    with world.sessions() as session:
        assert "captcha_challenges" not in inspect(session.connection()).get_table_names()


def test_a_right_answer_is_accepted_once_and_a_replay_refused(world):
    alice, now = profile_id(world), datetime.now(UTC)
    token = book(world).issue(alice, now)
    answer = book(world).answer_for(token)
    assert verify(world, token, answer, alice, now)
    assert not verify(world, token, answer, alice, now + timedelta(seconds=1))
    assert spent_rows(world) == 1


def test_a_wrong_answer_spends_the_challenge_too(world):
    alice, now = profile_id(world), datetime.now(UTC)
    token = book(world).issue(alice, now)
    answer = book(world).answer_for(token)
    wrong = "".join(str((int(d) + 1) % 10) for d in answer)
    assert not verify(world, token, wrong, alice, now)
    assert not verify(world, token, answer, alice, now)


def test_an_expired_or_other_profile_token_is_refused_and_writes_nothing(world):
    alice, bob, now = profile_id(world), profile_id(world, "bob"), datetime.now(UTC)
    token = book(world).issue(alice, now)
    answer = book(world).answer_for(token)
    assert not verify(world, token, answer, bob, now)
    assert not verify(world, token, answer, alice, now + TTL)
    assert not verify(world, token, answer, alice, now - timedelta(minutes=5))  # from the future
    with world.sessions() as session:
        assert book(world).image(session, token, bob, now) is None
        assert book(world).image(session, token, alice, now + TTL) is None
        assert book(world).image(session, token, alice, now) is not None
    assert spent_rows(world) == 0
    assert verify(world, token, answer, alice, now + TTL - timedelta(seconds=1))


def test_a_tampered_token_is_refused(world):
    alice, bob, now = profile_id(world), profile_id(world, "bob"), datetime.now(UTC)
    token = book(world).issue(alice, now)
    nonce, _, issued, mac = token.split(".")
    forgeries = [
        f"{nonce}.{bob:x}.{issued}.{mac}",  # moved to another page
        f"{nonce}.{alice:x}.{int(issued, 16) + 600:x}.{mac}",  # made younger
        f"{nonce[::-1]}.{alice:x}.{issued}.{mac}",  # another nonce
        f"{nonce}.{alice:x}.{issued}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        token.replace(".", ""),
        "x" * 200,
    ]
    foreign = CaptchaBook("another secret", 300).issue(alice, now)
    for forged in [*forgeries, foreign]:
        answer = book(world).answer_for(forged)
        profile = bob if forged == forgeries[0] else alice
        assert not verify(world, forged, answer, profile, now), forged
        with world.sessions() as session:
            assert book(world).image(session, forged, profile, now) is None
    assert spent_rows(world) == 0
    assert world.client.get(f"/callnow/alice/captcha/{forgeries[3]}.png").status_code == 404


def test_spent_rows_older_than_the_ttl_are_purged(world):
    alice, now = profile_id(world), datetime.now(UTC)
    with world.sessions() as session, session.begin():
        for i in range(3):
            assert spent_captchas.spend(session, f"old{i}", now - TTL - timedelta(minutes=i + 1))
        assert spent_captchas.spend(session, "recent", now - timedelta(seconds=10))
    token = book(world).issue(alice, now)
    assert verify(world, token, book(world).answer_for(token), alice, now)
    with world.sessions() as session:
        left = set(session.scalars(select(SpentCaptcha.nonce)))
    assert "recent" in left and not any(nonce.startswith("old") for nonce in left)
    assert len(left) == 2


def test_purging_is_bounded(world):
    now = datetime.now(UTC)
    with world.sessions() as session, session.begin():
        for i in range(5):
            spent_captchas.spend(session, f"old{i}", now - timedelta(hours=1, minutes=i))
    with world.sessions() as session, session.begin():
        assert spent_captchas.purge_expired(session, now, limit=3) == 3
    assert spent_rows(world) == 2


def test_a_replay_inside_one_transaction_leaves_it_usable(world):
    now = datetime.now(UTC)
    with world.sessions() as session, session.begin():
        assert spent_captchas.spend(session, "nonce", now)
        assert not spent_captchas.spend(session, "nonce", now)
        assert spent_captchas.spend(session, "other", now)
    assert spent_rows(world) == 2
