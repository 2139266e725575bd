"""The visitor's page: what it shows in each owner setting, and what a submission does."""

import re
from datetime import timedelta

from callnow.domain.availability import Window
from callnow.store import profiles
from callnow.store.models import RequestEvent, utcnow
from tests.web.helpers import all_requests, form_token, post_form, set_profile


def test_the_page_greets_with_the_owner_name_and_welcome_message(world):
    set_profile(world, "alice", welcome_message="Hello <b>there</b>")
    page = world.client.get("/callnow/alice")
    assert page.status_code == 200
    assert "Ask Alice Pty Owner to call you back" in page.text
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in page.text  # rendered escaped
    assert "<b>there</b>" not in page.text


def test_the_owner_name_is_hidden_when_the_owner_says_so(world):
    set_profile(world, "alice", show_name=False)
    page = world.client.get("/callnow/alice")
    assert "Alice Pty Owner" not in page.text
    assert "Request a call back" in page.text


def test_the_query_form_of_the_address_shows_the_same_page(world):
    assert "Alice Pty Owner" in world.client.get("/callnow?id=alice").text
    assert "Alice Pty Owner" in world.client.get("/callnow/ALICE").text


def test_unknown_disabled_and_do_not_allow_pages_look_alike(world):
    unknown = world.client.get("/callnow/nobody_here")
    set_profile(world, "alice", enabled=False)
    disabled = world.client.get("/callnow/alice")
    set_profile(world, "bob", do_not_allow=True)
    hidden = world.client.get("/callnow/bob")
    assert unknown.status_code == disabled.status_code == hidden.status_code == 404
    assert unknown.text == disabled.text == hidden.text


def test_a_submission_for_a_hidden_page_is_answered_like_an_unknown_one(world):
    page = world.client.get("/callnow/alice")
    set_profile(world, "alice", enabled=False)
    response = world.client.post(
        "/callnow/alice",
        data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
    )
    assert response.status_code == 404
    assert response.text == world.client.get("/callnow/nobody_here").text
    assert all_requests(world) == []


def test_submitting_the_form_queues_a_request_and_shows_its_status(world):
    response = post_form(world, "alice", name="Mary", number="(02) 9037-5678")
    assert response.status_code == 303
    status_url = response.headers["location"]
    assert status_url.startswith("/callnow/alice/requests/")
    [request] = all_requests(world)
    assert request.state == "queued"
    assert request.decision == "confirm"
    assert request.number_e164 == "+61290375678"
    assert request.number_typed == "(02) 9037-5678"
    assert request.caller_name == "Mary"
    assert len(request.token) >= 43  # 256 random bits
    assert request.source_address == "testclient"
    status = world.client.get(status_url)
    assert status.status_code == 200
    assert 'aria-live="polite"' in status.text
    assert "waiting" in status.text


def test_a_request_queued_while_its_owner_is_held_after_a_busy_phone_says_they_are_on_a_call(
    world,
):
    with world.sessions() as session, session.begin():
        alice = profiles.by_callnow_id(session, "alice")
        assert alice is not None
        alice.extension.busy_until = utcnow() + timedelta(seconds=30)
    status_url = post_form(world, "alice", name="Mary", number="0290375678").headers["location"]
    assert "is on another call" in world.client.get(status_url).text

    with world.sessions() as session, session.begin():
        alice = profiles.by_callnow_id(session, "alice")
        assert alice is not None
        alice.extension.busy_until = utcnow() - timedelta(seconds=1)  # the hold is over
    status = world.client.get(status_url).text
    assert "is on another call" not in status and "in a moment" in status


def test_the_request_history_records_each_state_with_its_reason(world):
    post_form(world, "alice", name="Mary", number="0290375678")
    with world.sessions() as session:
        events = session.query(RequestEvent).order_by(RequestEvent.id).all()
        assert [(e.state, e.reason) for e in events] == [("received", "web"), ("queued", "default")]


def test_without_confirmation_the_request_is_auto_accepted(world):
    set_profile(world, "alice", confirmation_required=False)
    post_form(world, "alice", name="Mary", number="0290375678")
    assert all_requests(world)[0].decision == "accept"


def test_the_name_is_required_when_the_owner_asks_for_it(world):
    response = post_form(world, "alice", name="  ", number="0290375678")
    assert response.status_code == 422
    assert "Please tell the owner your name." in response.text
    assert all_requests(world) == []


def test_the_name_is_optional_when_the_owner_allows_anonymous_callers(world):
    set_profile(world, "alice", require_caller_name=False)
    page = world.client.get("/callnow/alice")
    assert "Your name (optional)" in page.text
    assert post_form(world, "alice", number="0290375678").status_code == 303
    assert all_requests(world)[0].caller_name is None


def test_a_bad_number_is_refused_with_the_reason_and_the_input_kept(world):
    response = post_form(world, "alice", name="Mary", number="500&SIP/x")
    assert response.status_code == 422
    assert "may only contain digits" in response.text
    assert 'value="500&amp;SIP/x"' in response.text
    assert all_requests(world) == []


def test_a_name_with_control_characters_is_refused(world):
    response = post_form(world, "alice", name="Mary\r\nVia: evil", number="0290375678")
    assert response.status_code == 422
    assert "control characters" in response.text


def test_a_form_without_a_valid_token_is_refused(world):
    response = world.client.post(
        "/callnow/alice", data={"form_token": "forged", "name": "Mary", "number": "0290375678"}
    )
    assert response.status_code == 400
    assert all_requests(world) == []


def test_a_token_for_another_page_does_not_work_here(world):
    bob_token = form_token(world.client.get("/callnow/bob").text)
    response = world.client.post(
        "/callnow/alice", data={"form_token": bob_token, "name": "Mary", "number": "0290375678"}
    )
    assert response.status_code == 400


def test_a_filled_honeypot_stores_nothing(world):
    response = post_form(world, "alice", name="Mary", number="0290375678", website="http://x")
    assert response.status_code == 400
    assert all_requests(world) == []


def test_outside_the_owner_hours_the_page_says_so_and_offers_a_message_instead(world):
    # A window of one minute a week, so "now" is almost surely outside it.
    set_profile(
        world, "alice", windows=[Window.parse(6, "03:00", "03:01")], timezone="Pacific/Kiritimati"
    )
    page = world.client.get("/callnow/alice")
    assert "Not available right now" in page.text
    # The owner's clock and its name, with the date so no one guesses which Sunday.
    when = r"Next available Sun, \w{3} \d\d?, \d{4}, 3:00\u202fAM \(Line Islands Time\)"
    assert re.search(when, page.text)
    assert "Call me back" not in page.text  # no call form: only the message form
    assert 'action="/callnow/alice/message"' in page.text


def test_a_second_request_for_the_same_number_returns_the_pending_one(world):
    first = post_form(world, "alice", name="Mary", number="0290375678")
    second = post_form(world, "alice", name="Mary", number="+61 2 9037 5678")
    assert first.headers["location"] == second.headers["location"]
    assert len(all_requests(world)) == 1


def test_a_reject_rule_rejects_without_saying_why(world):
    from callnow.domain.rules import NumberMatch, Rule, RuleAction
    from callnow.store import profiles

    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        rule = Rule(RuleAction.REJECT, number_match=NumberMatch.PREFIX, number_value="614")
        profiles.replace_rules(session, profile, [rule])
    response = post_form(world, "alice", name="Mary", number="0412 345 678")
    status = world.client.get(response.headers["location"])
    [request] = all_requests(world)
    assert (request.state, request.reason) == ("rejected", "rule")
    assert "cannot be arranged" in status.text
    assert "rule" not in status.text.lower()


def test_a_status_page_is_only_found_under_its_own_profile(world):
    location = post_form(world, "alice", name="Mary", number="0290375678").headers["location"]
    token = location.rsplit("/", 1)[1]
    assert world.client.get(f"/callnow/bob/requests/{token}").status_code == 404
    assert world.client.get("/callnow/alice/requests/not-a-token").status_code == 404


def test_one_step_link_places_the_request_when_allowed_and_no_captcha(world):
    set_profile(world, "alice", one_step_allowed=True, image_validation=False)
    response = world.client.get("/callnow/alice?name=Mary&number=0290375678")
    assert response.status_code == 303
    [request] = all_requests(world)
    assert (request.channel, request.state) == ("one_step", "queued")


def test_one_step_link_only_prefills_the_form_when_the_owner_did_not_allow_it(world):
    set_profile(world, "alice", one_step_allowed=False, image_validation=False)
    response = world.client.get("/callnow/alice?name=Mary&number=0290375678")
    assert response.status_code == 200
    assert 'value="Mary"' in response.text and 'value="0290375678"' in response.text
    assert all_requests(world) == []


def test_one_step_link_only_prefills_the_form_when_image_validation_is_on(world):
    set_profile(world, "alice", one_step_allowed=True, image_validation=True)
    response = world.client.get("/callnow/alice?name=Mary&number=0290375678")
    assert response.status_code == 200
    assert all_requests(world) == []


def test_one_step_with_a_bad_number_shows_the_form_with_the_reason(world):
    set_profile(world, "alice", one_step_allowed=True, image_validation=False)
    response = world.client.get("/callnow/alice?name=Mary&number=call%20me")
    assert response.status_code == 422
    assert "letters" in response.text
    assert all_requests(world) == []


def test_oversized_bodies_and_query_strings_are_refused(world):
    assert world.client.get("/callnow/alice?name=" + "x" * 3000).status_code == 414
    big = world.client.post(
        "/callnow/alice",
        content=b"x" * 20_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413


def test_oversized_headers_are_refused_with_security_headers(world):
    answer = world.client.get("/callnow/alice", headers={"x-padding": "x" * 100_000})
    assert answer.status_code == 431
    assert answer.headers["x-content-type-options"] == "nosniff"
    too_long = world.client.get("/callnow/alice?name=" + "x" * 3000)
    assert too_long.headers["x-content-type-options"] == "nosniff"


def test_pages_carry_security_headers(world):
    headers = world.client.get("/callnow/alice").headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_after_the_owner_declines_the_same_number_cannot_ring_again_for_an_hour(world):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from callnow.domain.request_state import RequestState
    from callnow.store.models import CallRequest, RequestEvent
    from callnow.store.requests import move

    post_form(world, "alice", name="Mary", number="0290375678")
    with world.sessions() as session, session.begin():
        request = session.query(CallRequest).one()
        move(request, RequestState.CALLING_OWNER, "dialled")
        move(request, RequestState.OWNER_DECLINED, "pressed 2")
    again = post_form(world, "alice", name="Mary", number="02 9037 5678")
    assert "cannot be arranged" in world.client.get(again.headers["location"]).text
    latest = all_requests(world)[-1]
    assert (latest.state, latest.reason) == ("rejected", "declined_recently")
    # Another number is not affected, and an hour later the same one may ask again.
    assert all_requests(world)[-1].number_e164 == "+61290375678"
    post_form(world, "alice", name="Joe", number="0290375679")
    assert all_requests(world)[-1].state == "queued"
    with world.sessions() as session, session.begin():
        session.execute(
            update(RequestEvent)
            .where(RequestEvent.state == "owner_declined")
            .values(at=datetime.now(UTC) - timedelta(hours=1, seconds=1))
        )
    post_form(world, "alice", name="Mary", number="0290375678")
    assert all_requests(world)[-1].state == "queued"
