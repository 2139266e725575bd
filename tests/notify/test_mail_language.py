"""Owner e-mail in the owner's language, through a real SMTP server process (aiosmtpd)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from callnow.store import page_alerts, profiles
from callnow.store.db import transaction
from callnow.store.models import User
from tests.notify.test_mail_outbox import mail_settings, send_pass
from tests.support.smtp import text_of
from tests.support.world import queued_request
from tests.web.helpers import post_form, set_profile


def speak(world, language: str) -> None:
    with world.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        user.language = language


def test_an_owner_with_language_de_gets_the_notice_in_german(world, smtp_server):
    speak(world, "de")
    set_profile(world, "alice", confirm_on_web=True)
    # The visitor's browser asks for English: the owner's mail is still German.
    posted = post_form(world, "alice", name="Mary", number="0290375678")
    assert posted.status_code == 303
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Mary (+61290375678) zurückrufen? Annehmen oder ablehnen"
    body = text_of(message)
    assert "Mary (+61290375678) hat auf Ihrer Seite alice um einen Rückruf gebeten." in body
    assert "Annehmen (zurückrufen): http://testserver/portal/mail-answer/" in body
    assert "Ablehnen: http://testserver/portal/mail-answer/" in body
    assert "Legen Sie fest, welche Benachrichtigungen Sie erhalten" in body
    assert "Accept" not in body and "call them back" not in body
    # The link's own page speaks the owner's language too, whatever the browser asks for.
    [link] = re.findall(r"Annehmen \(zurückrufen\): (http\S+)", body)
    page = world.client.get(urlsplit(link).path, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Mary zurückrufen?" in page.text and "Annehmen und zurückrufen" in page.text
    answered = world.client.post(urlsplit(link).path, headers={"Accept-Language": "en"})
    assert "Angenommen. CallNow ruft jetzt Ihre Nebenstelle an" in answered.text


def test_a_digest_counts_in_the_owners_plural_forms(world, smtp_server):
    speak(world, "ar")
    settings = mail_settings(world, smtp_server, digest_burst=1, digest_gap_s=0)
    set_profile(world, "alice", confirm_on_web=True)
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375600", decision="confirm_web")
    assert send_pass(world, settings) == 1
    for n in range(3):
        with transaction(world.sessions) as session:
            queued_request(session, "alice", f"+612903757{n:02d}", decision="confirm_web")
    assert send_pass(world, settings) == 3
    digest = smtp_server.wait_for(2)[-1]
    # Arabic has a form for 3 to 10 of a thing ("إشعارات"), unlike 11 to 99 ("إشعارًا").
    assert digest["Subject"] == "ملخص CallNow: 3 إشعارات"
    assert "عدد الأحداث على صفحاتك في CallNow: 3" in text_of(digest)


def test_a_flood_notice_gives_its_end_in_the_owners_locale(world, smtp_server):
    speak(world, "de")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    until = now + timedelta(hours=1)
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        assert page_alerts.raise_flood(session, profile, now, until)
    with world.sessions() as session, session.begin():
        assert page_alerts.tell_owners(session, now) == 1
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Ungewöhnlich viele Anfragen auf Ihrer CallNow-Seite"
    # Babel's German medium format: "03.12.2026, 10:00:00".
    shown = f"{until:%d.%m.%Y}, {until:%H:%M}:00"
    assert f"bis {shown} (UTC) ein CAPTCHA lösen" in text_of(message)
