"""Image validation: single use, expiring, bound to its page, with an audio alternative."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callnow.config import AbuseSettings
from callnow.services.throttle import Throttle
from callnow.store.models import Profile
from tests.web.helpers import all_requests, form_token, set_profile


def captcha_form(world, callnow_id="alice"):
    page = world.client.get(f"/callnow/{callnow_id}")
    token = form_token(page.text, "captcha_token")
    answer = world.client.app.state.callnow.safeguards.captcha.answer_for(token)
    return page, token, answer


def post(world, page, captcha_token, answer, callnow_id="alice", number="0290375678"):
    return world.client.post(
        f"/callnow/{callnow_id}",
        data={
            "form_token": form_token(page.text),
            "name": "Mary",
            "number": number,
            "captcha_token": captcha_token,
            "captcha_answer": answer,
        },
    )


def test_the_page_shows_an_image_and_an_audio_alternative(world):
    set_profile(world, "alice", image_validation=True)
    page, token, _ = captcha_form(world)
    assert f"/callnow/alice/captcha/{token}.png" in page.text
    assert "Listen to the digits instead" in page.text
    image = world.client.get(f"/callnow/alice/captcha/{token}.png")
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    audio = world.client.get(f"/callnow/alice/captcha/{token}.wav")
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content.startswith(b"RIFF")
    assert audio.headers["cache-control"] == "no-store"


def test_the_right_answer_places_the_request(world):
    set_profile(world, "alice", image_validation=True)
    page, token, answer = captcha_form(world)
    assert post(world, page, token, answer).status_code == 303
    assert len(all_requests(world)) == 1


def test_a_wrong_answer_is_refused_and_a_new_picture_is_offered(world):
    set_profile(world, "alice", image_validation=True)
    page, token, answer = captcha_form(world)
    wrong = "".join(str((int(d) + 1) % 10) for d in answer)
    response = post(world, page, token, wrong)
    assert response.status_code == 400
    assert "did not match" in response.text
    assert form_token(response.text, "captcha_token") != token
    assert all_requests(world) == []


def test_a_challenge_cannot_be_replayed(world):
    set_profile(world, "alice", image_validation=True)
    page, token, answer = captcha_form(world)
    assert post(world, page, token, answer).status_code == 303
    again = post(world, page, token, answer, number="0290375679")
    assert again.status_code == 400
    assert len(all_requests(world)) == 1
    assert world.client.get(f"/callnow/alice/captcha/{token}.png").status_code == 404


def test_an_expired_challenge_is_refused(world):
    set_profile(world, "alice", image_validation=True)
    page, _, _ = captcha_form(world)
    # Challenges are signed, not stored: an expired one is one issued longer than the TTL ago.
    book = world.client.app.state.callnow.safeguards.captcha
    with world.sessions() as session:
        alice = session.scalars(select(Profile).where(Profile.callnow_id == "alice")).one()
    token = book.issue(alice.id, datetime.now(UTC) - timedelta(minutes=5, seconds=1))
    answer = book.answer_for(token)
    assert post(world, page, token, answer).status_code == 400
    assert all_requests(world) == []


def test_a_challenge_from_another_page_is_refused(world):
    set_profile(world, "alice", image_validation=True)
    set_profile(world, "bob", image_validation=True)
    _, bob_token, bob_answer = captcha_form(world, "bob")
    page, _, _ = captcha_form(world, "alice")
    assert post(world, page, bob_token, bob_answer).status_code == 400
    assert world.client.get(f"/callnow/alice/captcha/{bob_token}.png").status_code == 404


def test_an_empty_challenge_is_refused(world):
    set_profile(world, "alice", image_validation=True)
    page, _, _ = captcha_form(world)
    assert post(world, page, "", "").status_code == 400
    assert all_requests(world) == []


def test_the_check_switches_on_by_itself_when_a_page_gets_busy(world):
    safeguards = world.client.app.state.callnow.safeguards
    object.__setattr__(
        safeguards, "throttle", Throttle(AbuseSettings(captcha_auto_on="3/10 minutes"))
    )
    assert "captcha_token" not in world.client.get("/callnow/alice").text
    for i in range(3):
        page = world.client.get("/callnow/alice")
        world.client.post(
            "/callnow/alice",
            data={"form_token": form_token(page.text), "name": "M", "number": f"029037{5600 + i}"},
        )
    busy = world.client.get("/callnow/alice")
    assert "captcha_token" in busy.text
    refused = world.client.post(
        "/callnow/alice",
        data={"form_token": form_token(busy.text), "name": "M", "number": "0290375699"},
    )
    assert refused.status_code == 400
    assert len(all_requests(world)) == 3


def test_the_audio_of_one_challenge_is_the_same_clip_every_time(world):
    """Rendered for the challenge, not per fetch: several fetches cannot be averaged."""
    set_profile(world, "alice", image_validation=True)
    _, token, _ = captcha_form(world)
    first = world.client.get(f"/callnow/alice/captcha/{token}.wav")
    again = world.client.get(f"/callnow/alice/captcha/{token}.wav")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    _, other, _ = captcha_form(world)
    assert world.client.get(f"/callnow/alice/captcha/{other}.wav").content != first.content
