"""A flood that switches a page to CAPTCHA reaches its owner as one e-mail notice."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from callnow.store import page_alerts, profiles
from callnow.store.notify_models import MailOutbox

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_a_flood_alert_becomes_one_mail_notice_for_the_owner(world):
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, "alice")
        assert page_alerts.raise_flood(session, profile, NOW, NOW + timedelta(hours=1))
    with world.sessions() as session, session.begin():
        assert page_alerts.tell_owners(session, NOW) == 1
    with world.sessions() as session, session.begin():
        assert page_alerts.tell_owners(session, NOW) == 0  # told once, never again
        rows = session.execute(select(MailOutbox.kind, func.count()).group_by(MailOutbox.kind))
        assert dict(rows.all()) == {"flood": 1}
