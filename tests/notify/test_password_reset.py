"""Password reset by e-mail: same answer for any address, single use, expiry, throttling."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from callnow.store.db import transaction
from callnow.store.models import utcnow
from callnow.store.notify_models import MailOutbox, PasswordReset
from tests.notify.test_mail_outbox import mail_settings, outbox, send_pass
from tests.support.smtp import text_of
from tests.support.world import PASSWORD
from tests.web.helpers import form_token
from tests.web.test_portal import log_in

NEW_PASSWORD = "a brand new passphrase"


def ask(world, email: str):
    page = world.client.get("/portal/reset")
    assert page.status_code == 200
    return world.client.post(
        "/portal/reset", data={"csrf": form_token(page.text, "csrf"), "email": email}
    )


def mailed_link(world, smtp_server) -> str:
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Reset your CallNow password"
    [link] = re.findall(r"http://testserver(/portal/reset/\S+)", text_of(message))
    return urlsplit(link).path


def choose(world, path: str, password: str = NEW_PASSWORD):
    page = world.client.get(path)
    if page.status_code != 200:
        return page
    return world.client.post(
        path,
        data={
            "csrf": form_token(page.text, "csrf"),
            "password": password,
            "password_again": password,
        },
    )


def can_log_in(world, password: str) -> bool:
    world.client.cookies.clear()
    page = world.client.get("/portal/login")
    response = world.client.post(
        "/portal/login",
        data={
            "csrf": form_token(page.text, "csrf"),
            "email": "alice@example.com",
            "password": password,
        },
    )
    return response.status_code == 303


def test_a_known_and_an_unknown_address_get_the_same_answer(world):
    known = ask(world, "alice@example.com")
    unknown = ask(world, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = lambda text: re.sub(r'name="csrf" value="[^"]+"|value="[^"]*@example.com"', "", text)  # noqa: E731
    assert strip(known.text) == strip(unknown.text)
    assert "If an account exists for that address" in known.text
    assert [r.kind for r in outbox(world)] == ["password_reset"]  # only the real account


def test_a_reset_link_works_once_and_the_token_is_not_kept_in_clear(world, smtp_server):
    ask(world, "alice@example.com")
    path = mailed_link(world, smtp_server)
    token = path.rsplit("/", 1)[1]
    with world.sessions() as session:
        [reset] = session.scalars(select(PasswordReset)).all()
        [row] = session.scalars(select(MailOutbox)).all()
    assert reset.token_hash != token and token not in reset.token_hash
    assert row.details == {}  # the sent mail's token left the outbox with it

    done = choose(world, path)
    assert done.status_code == 303 and done.headers["location"].startswith("/portal/login")
    assert can_log_in(world, NEW_PASSWORD)
    assert not can_log_in(world, PASSWORD)
    again = choose(world, path, "yet another passphrase")
    assert again.status_code == 404 and "not valid" in again.text
    assert can_log_in(world, NEW_PASSWORD)


def test_an_expired_link_does_nothing(world, smtp_server):
    ask(world, "alice@example.com")
    path = mailed_link(world, smtp_server)
    with transaction(world.sessions) as session:
        session.scalars(select(PasswordReset)).one().expires_at = utcnow() - timedelta(seconds=1)
    assert choose(world, path).status_code == 404
    assert can_log_in(world, PASSWORD)


def test_a_weak_or_mismatched_password_keeps_the_link_usable(world, smtp_server):
    ask(world, "alice@example.com")
    path = mailed_link(world, smtp_server)
    assert choose(world, path, "short").status_code == 422
    page = world.client.get(path)
    mismatch = world.client.post(
        path,
        data={
            "csrf": form_token(page.text, "csrf"),
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD + "x",
        },
    )
    assert mismatch.status_code == 422
    assert choose(world, path).status_code == 303


def test_asking_is_throttled_alike_for_known_and_unknown_addresses(world):
    for _ in range(3):
        assert ask(world, "alice@example.com").status_code == 200
        assert ask(world, "nobody@example.com").status_code == 200
    assert ask(world, "alice@example.com").status_code == 429
    assert ask(world, "nobody@example.com").status_code == 429
    assert len(outbox(world)) == 3


def test_the_login_page_links_to_the_reset(world):
    assert 'href="/portal/reset"' in world.client.get("/portal/login").text


def test_the_owner_chooses_notices_in_the_portal(world):
    log_in(world)
    page = world.client.get("/portal/notifications")
    assert (
        page.status_code == 200 and 'id="kind_awaiting" name="kind_awaiting" checked' in page.text
    )
    saved = world.client.post(
        "/portal/notifications",
        data={"csrf": form_token(page.text, "csrf"), "kind_missed": "on", "paused": "on"},
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    assert 'name="kind_awaiting" >' in saved.text or 'name="kind_awaiting">' in saved.text
    assert 'id="paused" name="paused" checked' in saved.text
    forged = world.client.post("/portal/notifications", data={"csrf": "forged"})
    assert forged.status_code == 400
