"""Take a message: after a call that could not happen, the visitor writes to the owner once, and
the owner finds it in the portal, the Call API, a webhook delivery and the mail outbox."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callnow.config import AbuseSettings
from callnow.domain.availability import Window
from callnow.domain.left_message import MAX_CHARS
from callnow.domain.request_state import RequestState
from callnow.services.throttle import Throttle
from callnow.store import accounts, mail
from callnow.store import requests as request_store
from callnow.store.models import CallRequest, User, WebhookDelivery
from callnow.store.webhooks import set_owner_url
from callnow.web.forms import FormTokens
from callnow.web.visitor_messages import _purpose
from tests.support.world import PASSWORD
from tests.web.helpers import form_token, post_form, set_profile

S = RequestState


def new_request(world, number: str = "0290375678") -> str:
    response = post_form(world, "alice", name="Mary", number=number)
    assert response.status_code == 303
    return response.headers["location"]


def end_as(world, status_url: str, *states: RequestState) -> None:
    token = status_url.rsplit("/", 1)[1]
    with world.sessions() as session, session.begin():
        request = request_store.by_token(session, token)
        for state in states:
            request_store.move(request, state, "test")


def declined(world, number: str = "0290375678") -> str:
    url = new_request(world, number)
    end_as(world, url, S.CALLING_OWNER, S.OWNER_DECLINED)
    return url


def leave(world, status_url: str, text: str, token: str | None = None):
    if token is None:
        token = form_token(world.client.get(status_url).text)
    return world.client.post(f"{status_url}/message", data={"form_token": token, "message": text})


def stored(world, status_url: str):
    with world.sessions() as session:
        return request_store.by_token(session, status_url.rsplit("/", 1)[1])


@pytest.fixture
def alice_key(world) -> dict[str, str]:
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        set_owner_url(session, user, "https://hooks.example.com/callnow")
        return {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}


def test_a_message_after_a_decline_reaches_the_portal_the_api_a_webhook_and_the_mail(
    world, alice_key
):
    url = declined(world)
    page = world.client.get(url)
    assert "Leave a message" in page.text
    text = "Sorry to miss you.\r\nPlease ring me after 5 <b>pm</b>."
    answer = leave(world, url, text)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("#message")
    page = world.client.get(url)
    assert "Your message" in page.text and "Leave a message" not in page.text
    assert "Please ring me after 5 &lt;b&gt;pm&lt;/b&gt;." in page.text  # escaped, never markup
    kept = "Sorry to miss you.\nPlease ring me after 5 <b>pm</b>."
    assert stored(world, url).message == kept

    token = url.rsplit("/", 1)[1]
    one = world.client.get(f"/api/v1/requests/{token}", headers=alice_key).json()
    assert one["message"] == kept and one["message_at"]
    listed = world.client.get("/api/v1/profiles/alice/requests", headers=alice_key).json()
    assert [r["message"] for r in listed] == [kept]

    with world.sessions() as session:
        deliveries = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        message_hooks = [d.payload for d in deliveries if d.payload["event"] == "request.message"]
        assert len(message_hooks) == 1
        assert message_hooks[0]["request"]["token"] == token
        assert message_hooks[0]["request"]["message"] == kept
        assert message_hooks[0]["request"]["state"] == S.OWNER_DECLINED.value
        owner = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        notices = [n for n in mail.outbox_of(session, owner.id) if n.kind == "message"]
        assert len(notices) == 1
        assert notices[0].details["text"] == kept and notices[0].details["token"] == token

    page = world.client.get("/portal/login")
    world.client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": "alice@example.com",
              "password": PASSWORD},
    )  # fmt: skip
    portal = world.client.get("/portal/requests")
    assert "Messages from visitors" in portal.text
    assert "Please ring me after 5 &lt;b&gt;pm&lt;/b&gt;." in portal.text
    webhooks_page = world.client.get("/portal/webhooks")
    assert webhooks_page.status_code == 200


def test_an_unanswered_request_takes_a_message_too(world):
    url = new_request(world)
    end_as(world, url, S.CALLING_OWNER, S.OWNER_UNREACHABLE)
    assert leave(world, url, "Call me when you can").status_code == 303
    assert stored(world, url).message == "Call me when you can"


def test_an_over_long_message_is_refused_with_its_length_and_kept_for_correction(world):
    url = declined(world)
    answer = leave(world, url, "x" * (MAX_CHARS + 1))
    assert answer.status_code == 422
    assert f"Your message is {MAX_CHARS + 1} characters long; please keep it to {MAX_CHARS}." in (
        answer.text
    )
    assert answer.text.count("x" * (MAX_CHARS + 1)) == 1  # back in the field to shorten
    assert "<title>Error: " in answer.text
    assert stored(world, url).message is None
    assert leave(world, url, "x" * MAX_CHARS).status_code == 303


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("   \n ", "Please write a message."),
        ("ring\x00me", "control characters"),
        ("ring\x1b[31mme", "control characters"),
        ("ring\u202eme", "control characters"),
    ],
)
def test_empty_messages_and_control_characters_are_refused(world, text, why):
    url = declined(world)
    answer = leave(world, url, text)
    assert answer.status_code == 422
    assert why in answer.text
    assert stored(world, url).message is None


def test_a_second_message_is_refused(world):
    url = declined(world)
    token = form_token(world.client.get(url).text)
    assert leave(world, url, "First", token).status_code == 303
    again = leave(world, url, "Second", token)
    assert again.status_code == 409
    assert "You have already left a message for this request." in again.text
    assert stored(world, url).message == "First"


@pytest.mark.parametrize(
    "states",
    [
        (),  # queued
        (S.CALLING_OWNER,),
        (S.CALLING_OWNER, S.CALLING_VISITOR, S.CONNECTED),
        (S.CALLING_OWNER, S.CALLING_VISITOR, S.CONNECTED, S.COMPLETED),
    ],
    ids=["queued", "calling_owner", "connected", "completed"],
)
def test_no_message_while_a_request_runs_or_after_it_completed(world, states):
    url = new_request(world)
    end_as(world, url, *states)
    page = world.client.get(url)
    assert "Leave a message" not in page.text
    # A valid token for this request, as a visitor who kept an old tab would have.
    token = FormTokens(world.settings.web.secret_key).issue(_purpose(url.rsplit("/", 1)[1]))
    answer = leave(world, url, "Hello", token)
    assert answer.status_code == 409
    assert "A message can be left only when the call could not happen." in answer.text
    assert stored(world, url).message is None


def test_the_message_form_needs_this_requests_form_token(world):
    first = declined(world)
    second = declined(world, "0290375679")
    other_token = form_token(world.client.get(first).text)
    answer = leave(world, second, "Hello", other_token)
    assert answer.status_code == 400
    assert "This form has expired" in answer.text
    assert stored(world, second).message is None
    assert world.client.post(f"{first}x/message", data={"message": "x"}).status_code == 404


def test_messages_are_rate_limited_per_page(world):
    urls = [declined(world, f"029037567{i}") for i in range(3)]
    safeguards = world.client.app.state.callnow.safeguards
    lifted = "1000/minute"
    object.__setattr__(
        safeguards,
        "throttle",
        Throttle(
            AbuseSettings(
                storage_url="memory://", per_source=lifted, per_network=lifted, per_profile="2/hour"
            )
        ),
    )
    assert [leave(world, url, "Hello").status_code for url in urls] == [303, 303, 429]
    assert stored(world, urls[2]).message is None
    # The page's own calls are counted apart: messages never use up the owner's requests.
    assert post_form(world, "alice", name="Mary", number="0290379999").status_code == 303


def close_alice(world) -> None:
    # A window of one minute a week, so "now" is almost surely outside it.
    set_profile(
        world, "alice", windows=[Window.parse(6, "03:00", "03:01")], timezone="Pacific/Kiritimati"
    )


def leave_closed(world, **fields: str):
    page = world.client.get("/callnow/alice")
    token = form_token(page.text)
    return world.client.post("/callnow/alice/message", data={"form_token": token, **fields})


def test_out_of_hours_a_message_is_kept_on_a_request_that_reaches_the_owner(world, alice_key):
    close_alice(world)
    answer = leave_closed(world, name="Mary", number="0290375678", message="Back at 9?")
    assert answer.status_code == 303
    url = answer.headers["location"].split("#")[0]
    kept = stored(world, url)
    assert (kept.state, kept.reason, kept.message) == ("rejected", "outside_hours", "Back at 9?")
    page = world.client.get(url)
    assert "Your message" in page.text and "Back at 9?" in page.text
    one = world.client.get(f"/api/v1/requests/{kept.token}", headers=alice_key).json()
    assert one["message"] == "Back at 9?"
    with world.sessions() as session:
        hooks = session.scalars(select(WebhookDelivery)).all()
        assert [d.payload["request"]["message"] for d in hooks
                if d.payload["event"] == "request.message"] == ["Back at 9?"]  # fmt: skip
        texts = [n.details.get("text") for n in mail.outbox_of(session) if n.kind == "message"]
        assert texts == ["Back at 9?"]
    # That request took its one message.
    token = FormTokens(world.settings.web.secret_key).issue(_purpose(kept.token))
    assert leave(world, url, "And another", token).status_code == 409
    assert stored(world, url).message == "Back at 9?"


def test_out_of_hours_bad_fields_are_refused_and_nothing_is_recorded(world):
    close_alice(world)
    too_long = leave_closed(world, name="Mary", number="0290375678", message="x" * 501)
    assert too_long.status_code == 422
    assert "please keep it to 500" in too_long.text and "<title>Error: " in too_long.text
    bad_number = leave_closed(world, name="Mary", number="12", message="Hello")
    assert bad_number.status_code == 422
    assert 'id="number-error"' in bad_number.text
    with world.sessions() as session:
        assert session.scalars(select(CallRequest)).all() == []


def test_the_closed_page_form_is_refused_once_the_page_is_open(world):
    close_alice(world)
    token = form_token(world.client.get("/callnow/alice").text)
    set_profile(world, "alice", windows=[])  # no windows: open at any time
    answer = world.client.post(
        "/callnow/alice/message",
        data={"form_token": token, "name": "M", "number": "0290375678", "message": "Hi"},
    )
    assert answer.status_code == 409
    assert "ask for a call back" in answer.text
