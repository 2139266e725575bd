"""The mailed one-click links: they answer once, through the Pending page's own code."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from callnow.notify import links
from callnow.store.models import utcnow
from tests.notify.test_mail_outbox import mail_settings, send_pass
from tests.support.smtp import text_of
from tests.web.helpers import all_requests, post_form, set_profile
from tests.web.test_web_confirmation import age, last_event


def mailed_links(world, smtp_server) -> dict[str, str]:
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name="Mary", number="0290375678").status_code == 303
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    found = dict(re.findall(r"(Accept|Decline)[^:]*: (http\S+)", text_of(message)))
    return {k.lower(): urlsplit(v).path for k, v in found.items()}


def test_the_accept_link_shows_one_button_then_accepts_once(world, smtp_server):
    accept = mailed_links(world, smtp_server)["accept"]
    page = world.client.get(accept)  # no login: the signed link is the owner's authority
    assert page.status_code == 200
    assert "Call back Mary?" in page.text
    [request] = all_requests(world)
    assert request.decision == "confirm_web"  # looking at the link changes nothing

    first = world.client.post(accept)
    assert first.status_code == 200 and "Accepted" in first.text
    [request] = all_requests(world)
    assert (request.state, request.decision) == ("queued", "web")
    assert last_event(world, request.token) == ("queued", "accepted on the web")

    second = world.client.post(accept)
    assert second.status_code == 409 and "no longer waits" in second.text
    assert last_event(world, request.token) == ("queued", "accepted on the web")


def test_decline_after_accept_does_nothing_and_decline_alone_declines(world, smtp_server):
    answers = mailed_links(world, smtp_server)
    assert world.client.post(answers["decline"]).status_code == 200
    [request] = all_requests(world)
    assert request.state == "owner_declined"
    assert world.client.post(answers["accept"]).status_code == 409
    [request] = all_requests(world)
    assert request.state == "owner_declined"


def test_an_expired_or_forged_link_answers_nothing(world, smtp_server):
    accept = mailed_links(world, smtp_server)["accept"]
    signed = accept.rsplit("/", 1)[1]
    forged = signed[:-3] + ("AAA" if not signed.endswith("AAA") else "BBB")
    assert world.client.post(f"/portal/mail-answer/{forged}").status_code == 404
    other_key = links.sign("another-key-" + "y" * 30, "whatever", "accept", utcnow())
    assert world.client.get(f"/portal/mail-answer/{other_key}").status_code == 404
    assert world.client.get("/portal/mail-answer/" + "x" * 500).status_code == 404
    # Past its request's web confirmation timeout nothing is accepted, even before housekeeping.
    [request] = all_requests(world)
    age(world, request.token, minutes=11)
    response = world.client.post(accept)
    assert response.status_code == 409
    [request] = all_requests(world)
    assert request.decision == "confirm_web"


def test_a_link_past_its_own_expiry_is_refused_while_the_request_still_waits(world):
    set_profile(world, "alice", confirm_on_web=True)
    post_form(world, "alice", name="Mary", number="0290375678")
    [request] = all_requests(world)
    key = world.settings.web.secret_key
    expired = links.sign(key, request.token, "accept", utcnow() - timedelta(seconds=1))
    assert world.client.get(f"/portal/mail-answer/{expired}").status_code == 404
    assert world.client.post(f"/portal/mail-answer/{expired}").status_code == 404
    [request] = all_requests(world)
    assert request.decision == "confirm_web"
    fresh = links.sign(key, request.token, "accept", utcnow() + timedelta(minutes=5))
    assert world.client.post(f"/portal/mail-answer/{fresh}").status_code == 200
