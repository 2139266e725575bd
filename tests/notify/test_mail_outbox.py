"""Owner e-mail through the outbox to a real SMTP server process (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callnow.config import MailSettings
from callnow.domain.notices import Kind
from callnow.notify.sender import MailSender
from callnow.store import mail as mail_store
from callnow.store import requests as request_store
from callnow.store.db import transaction
from callnow.store.models import User, utcnow
from callnow.store.notify_models import MailOutbox
from tests.support.smtp import ROOT, SmtpServer, self_signed_certificate, start_smtp_server, text_of
from tests.support.world import queued_request
from tests.web.helpers import post_form, set_profile


def mail_settings(world, server: SmtpServer, **overrides):
    mail = MailSettings(
        enabled=True,
        smtp_port=server.port,
        security="none",
        from_address="callnow@pbx.example",
        poll_interval_s=0.2,
        lease_s=5,
        **overrides,
    )
    return world.settings.model_copy(update={"mail": mail})


def send_pass(world, settings) -> int:
    return asyncio.run(MailSender(world.sessions, settings).run_once())


def outbox(world) -> list[MailOutbox]:
    with world.sessions() as session:
        return mail_store.outbox_of(session)


def alice_id(world) -> int:
    with world.sessions() as session:
        return session.scalars(select(User.id).where(User.email == "alice@example.com")).one()


def test_a_request_awaiting_the_web_mails_the_owner_once_with_answer_links(world, smtp_server):
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name="Mary", number="0290375678").status_code == 303
    [row] = outbox(world)
    assert (row.kind, row.sent_at) == ("awaiting", None)

    settings = mail_settings(world, smtp_server)
    assert send_pass(world, settings) == 1
    assert send_pass(world, settings) == 0  # sent once, never again
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "alice@example.com"
    assert message["From"] == "callnow@pbx.example"
    assert message["Message-ID"] == f"<{row.message_id}@pbx.example>"
    assert "Mary" in message["Subject"]
    body = text_of(message)
    assert re.search(r"Accept \(call them back\): http://testserver/portal/mail-answer/\S+", body)
    assert "Decline: http://testserver/portal/mail-answer/" in body
    [row] = outbox(world)
    assert row.sent_at is not None and row.attempts == 1


def test_a_burst_of_50_requests_sends_a_digest_not_50_mails(world, smtp_server):
    settings = mail_settings(world, smtp_server, digest_burst=5, digest_gap_s=0)
    set_profile(world, "alice", confirm_on_web=True)
    # The first request goes out on its own, as a quiet owner's would.
    with transaction(world.sessions) as session:
        queued_request(session, "alice", "+61290375600", decision="confirm_web")
    assert send_pass(world, settings) == 1
    # Then 50 at once, each in its own transaction as visitors' posts are.
    for n in range(50):
        with transaction(world.sessions) as session:
            queued_request(session, "alice", f"+612903757{n:02d}", decision="confirm_web")
    assert send_pass(world, settings) == 50
    messages = smtp_server.wait_for(2)
    assert len(messages) == 2
    digest = messages[1]
    assert digest["Subject"] == "CallNow digest: 50 notices"
    assert text_of(digest).count("/portal/mail-answer/") == 100  # accept and decline each
    rows = outbox(world)
    assert all(r.sent_at is not None for r in rows)
    assert {r.sent_as for r in rows[1:]} == {digest["Message-ID"].strip("<>").split("@")[0]}


def test_a_digest_waits_for_its_gap_and_then_collects_everything(world, smtp_server):
    settings = mail_settings(world, smtp_server, digest_burst=2, digest_gap_s=3600)
    set_profile(world, "alice", confirm_on_web=True)
    for n in range(2):
        with transaction(world.sessions) as session:
            queued_request(session, "alice", f"+6129037560{n}", decision="confirm_web")
    assert send_pass(world, settings) == 2  # within the burst: one mail each
    for n in range(3):
        with transaction(world.sessions) as session:
            queued_request(session, "alice", f"+6129037570{n}", decision="confirm_web")
    assert send_pass(world, settings) == 0  # held: the last mail was just now
    later = settings.model_copy(
        update={"mail": settings.mail.model_copy(update={"digest_gap_s": 0})}
    )
    assert send_pass(world, later) == 3
    assert [m["Subject"] for m in smtp_server.wait_for(3)][-1] == "CallNow digest: 3 notices"


def test_missed_and_declined_requests_are_notices_too(world):
    with transaction(world.sessions) as session:
        for state, reason in (
            ("owner_unreachable", "no answer"),
            ("owner_declined", "pressed 2"),
        ):
            request = queued_request(session, "alice", "+61290375678")
            request_store.move_by_id(
                session, request.id, request_store.RequestState.CALLING_OWNER, now=utcnow()
            )
            request_store.move_by_id(
                session, request.id, request_store.RequestState(state), reason, now=utcnow()
            )
    assert [r.kind for r in outbox(world)] == ["missed", "declined"]


def test_an_owner_who_paused_or_chose_fewer_kinds_gets_nothing_else(world, smtp_server):
    owner = alice_id(world)
    set_profile(world, "alice", confirm_on_web=True)
    with transaction(world.sessions) as session:
        mail_store.set_prefs(session, owner, paused=False, kinds={Kind.MISSED})
        queued_request(session, "alice", "+61290375601", decision="confirm_web")
    assert outbox(world) == []
    with transaction(world.sessions) as session:
        mail_store.set_prefs(session, owner, paused=True, kinds={Kind.AWAITING})
        queued_request(session, "alice", "+61290375602", decision="confirm_web")
        assert not mail_store.enqueue(session, user_id=owner, kind=Kind.MESSAGE, details={})
    assert outbox(world) == []
    with transaction(world.sessions) as session:
        mail_store.set_prefs(session, owner, paused=False, kinds={Kind.AWAITING})
        queued_request(session, "alice", "+61290375603", decision="confirm_web")
    assert [r.kind for r in outbox(world)] == ["awaiting"]


def test_a_message_left_is_enqueued_by_its_own_code_and_mailed(world, smtp_server):
    with transaction(world.sessions) as session:
        assert mail_store.enqueue(
            session,
            user_id=alice_id(world),
            kind=Kind.MESSAGE,
            details={"name": "Mary", "number": "+61290375678", "text": "Please call after 5."},
        )
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Mary (+61290375678) left you a message"
    assert "Please call after 5." in text_of(message)


def test_a_mail_server_that_is_down_is_retried_later_and_nothing_is_lost(world, smtp_server):
    set_profile(world, "alice", confirm_on_web=True)
    post_form(world, "alice", name="Mary", number="0290375678")
    smtp_server.stop()
    settings = mail_settings(world, smtp_server)
    assert send_pass(world, settings) == 0
    [row] = outbox(world)
    assert row.sent_at is None and row.gave_up_at is None
    assert row.attempts == 1 and "Connection" in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=10)  # backed off
    assert send_pass(world, settings) == 0  # not due yet

    back = start_smtp_server(smtp_server.directory.parent / "mailbox2")
    try:
        with transaction(world.sessions) as session:
            session.get(MailOutbox, row.id).next_attempt_at = utcnow()
        assert send_pass(world, mail_settings(world, back)) == 1
        [message] = back.wait_for(1)
        assert message["Message-ID"] == f"<{row.message_id}@pbx.example>"
    finally:
        back.stop()


def test_kill_9_of_the_sender_mid_send_neither_loses_nor_doubles_a_mail(world, tmp_path: Path):
    set_profile(world, "alice", confirm_on_web=True)
    post_form(world, "alice", name="Mary", number="0290375678")
    server = start_smtp_server(tmp_path / "stalling", stall_first=1)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CALLNOW_DATABASE_URL": world.settings.effective_database_url,
        "CALLNOW_DATA_DIR": str(tmp_path),
        "CALLNOW_WEB__SECRET_KEY": world.settings.web.secret_key,
        "CALLNOW_MAIL__ENABLED": "true",
        "CALLNOW_MAIL__SMTP_PORT": str(server.port),
        "CALLNOW_MAIL__SECURITY": "none",
        "CALLNOW_MAIL__LEASE_S": "5",
        "CALLNOW_MAIL__POLL_INTERVAL_S": "0.2",
    }

    def sender() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "callnow.notify.worker"], env=env, cwd=ROOT)

    first = sender()
    try:
        deadline = time.monotonic() + 20
        while not (server.directory / "stalled").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (server.directory / "stalled").exists(), "the sender never reached the server"
        os.kill(first.pid, signal.SIGKILL)  # mid-conversation: RCPT TO sent, no answer yet
        first.wait(timeout=5)
        [row] = outbox(world)
        assert row.sent_at is None and row.claim is not None  # claimed, not sent, not lost

        second = sender()
        try:
            [message] = server.wait_for(1, timeout_s=30)  # after the dead sender's lease
            time.sleep(1.5)  # several more passes: nothing goes out twice
            assert len(server.messages()) == 1
            assert "/portal/mail-answer/" in text_of(message)
        finally:
            second.terminate()
            second.wait(timeout=10)
        [row] = outbox(world)
        assert row.sent_at is not None
        assert message["Message-ID"] == f"<{row.message_id}@localhost>"
    finally:
        if first.poll() is None:
            first.kill()
        server.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_out_over_starttls_and_implicit_tls(world, tmp_path: Path, security: str):
    cert, key = self_signed_certificate(tmp_path)
    server = start_smtp_server(tmp_path / security, tls=security, cert=cert, key=key)
    try:
        with transaction(world.sessions) as session:
            mail_store.enqueue(
                session, user_id=alice_id(world), kind=Kind.MESSAGE, details={"text": "hello"}
            )
        untrusted = mail_settings(world, server, ca_file="")
        untrusted = untrusted.model_copy(
            update={"mail": untrusted.mail.model_copy(update={"security": security})}
        )
        assert send_pass(world, untrusted) == 0  # a certificate nobody vouches for: refused
        assert "CERTIFICATE_VERIFY_FAILED" in outbox(world)[0].last_error
        with transaction(world.sessions) as session:
            session.get(MailOutbox, outbox(world)[0].id).next_attempt_at = utcnow()
        trusted = untrusted.model_copy(
            update={"mail": untrusted.mail.model_copy(update={"ca_file": str(cert)})}
        )
        assert send_pass(world, trusted) == 1
        [message] = server.wait_for(1)
        assert "hello" in text_of(message)
    finally:
        server.stop()


def test_starttls_is_required_when_asked_for(world, smtp_server):
    with transaction(world.sessions) as session:
        mail_store.enqueue(session, user_id=alice_id(world), kind=Kind.MESSAGE, details={})
    settings = mail_settings(world, smtp_server)
    settings = settings.model_copy(
        update={"mail": settings.mail.model_copy(update={"security": "starttls"})}
    )
    assert send_pass(world, settings) == 0  # the plain server offers no STARTTLS: nothing sent
    assert smtp_server.messages() == []
    assert "STARTTLS" in outbox(world)[0].last_error


def test_a_waiting_notice_answered_before_it_went_out_is_dropped_not_sent(world, smtp_server):
    set_profile(world, "alice", confirm_on_web=True)
    post_form(world, "alice", name="Mary", number="0290375678")
    post_form(world, "alice", name="Ann", number="0290375679")
    with transaction(world.sessions) as session:
        first = request_store.by_token(session, outbox(world)[0].details["token"])
        first.state = "cancelled"  # as a visitor's cancel leaves it
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert "Ann" in message["Subject"]
    dropped, sent = outbox(world)
    assert dropped.gave_up_at is not None and dropped.sent_at is None
    assert dropped.last_error == "the request no longer waited"
    assert sent.sent_at is not None
