"""A budget nearly used up writes one e-mail notice for the owner a day, with the charge."""

from __future__ import annotations

from callnow.billing import ledger
from callnow.billing.budgets import set_budget
from callnow.domain.notices import Kind
from callnow.store import mail
from callnow.store.db import transaction
from callnow.store.models import utcnow
from tests.billing.test_ledger import (  # noqa: F401  (fixtures)
    LOCAL,
    add_finished_call,
    extension_id,
    import_platform_deck,
    sessions,
)


def post_local_call(sessions) -> None:  # noqa: F811
    with transaction(sessions) as session:
        leg = add_finished_call(session, "alice", LOCAL, answered_at=utcnow(), seconds=30)
    assert ledger.post_charge_with_retry(sessions, leg).gross_minor == 13


def budget_notices(sessions) -> list:  # noqa: F811
    with sessions() as session:
        return [r for r in mail.outbox_of(session) if r.kind == Kind.BUDGET.value]


def test_the_owner_hears_once_when_a_fifth_of_the_daily_cap_is_left(sessions):  # noqa: F811
    with transaction(sessions) as session:
        import_platform_deck(session)
        set_budget(
            session, utcnow(), extension_id=extension_id(session, "001002"), daily_cap_minor=60
        )
    for _ in range(3):  # 39 of 60 spent: 21 left, more than a fifth
        post_local_call(sessions)
    assert budget_notices(sessions) == []
    post_local_call(sessions)  # 52 spent: 8 left
    [notice] = budget_notices(sessions)
    assert "daily cap" in notice.details["text"]
    post_local_call(sessions)  # the same day: no second mail
    assert len(budget_notices(sessions)) == 1


def test_no_budget_no_notice(sessions):  # noqa: F811
    with transaction(sessions) as session:
        import_platform_deck(session)
    post_local_call(sessions)
    assert budget_notices(sessions) == []
