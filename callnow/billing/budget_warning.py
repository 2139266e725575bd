"""Tell the owner by e-mail when a budget is nearly used up (at most once a day per owner).

Run after a charge is posted, in the same transaction: the notice is committed with the charge
that caused it. "Nearly used up" is at most `LEFT_SHARE` of a limit left, for any of the daily
cap, the prepaid balance and the monthly credit limit of the extension or its tenant.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callnow.billing.budgets import budget_for, local_day
from callnow.domain.notices import Kind
from callnow.store import mail
from callnow.store.billing_models import BudgetRow
from callnow.store.models import Extension, Tenant

LEFT_SHARE = Fraction(1, 5)
LIMITS = (
    ("daily cap", "daily_cap_minor", "daily_cap_remaining_minor"),
    ("prepaid balance", "prepaid_balance_minor", "prepaid_balance_minor"),
    ("monthly credit limit", "credit_limit_minor", "credit_remaining_minor"),
)


def nearly_used_up(session: Session, extension_id: int, now: datetime) -> list[str]:
    """The limits of this extension with at most LEFT_SHARE left, by name."""
    extension = session.get(Extension, extension_id)
    if extension is None:
        return []
    rows = list(
        session.scalars(
            select(BudgetRow).where(
                or_(
                    BudgetRow.extension_id == extension_id,
                    BudgetRow.tenant_id == extension.tenant_id,
                )
            )
        )
    )
    if not rows:
        return []
    budget = budget_for(session, extension_id, now)
    low = []
    for name, cap_field, left_field in LIMITS:
        caps = [getattr(r, cap_field) for r in rows if getattr(r, cap_field) is not None]
        left = getattr(budget, left_field)
        if caps and left is not None and left <= min(caps) * LEFT_SHARE:
            low.append(name)
    return low


def warn_if_nearly_used_up(session: Session, extension_id: int, now: datetime) -> bool:
    """Write a `budget` notice for the extension's owner, once per day in the tenant's zone."""
    extension = session.get(Extension, extension_id)
    if extension is None or extension.owner_user_id is None:
        return False
    low = nearly_used_up(session, extension_id, now)
    if not low:
        return False
    tenant = session.get(Tenant, extension.tenant_id)
    assert tenant is not None  # a foreign key guarantees it
    today = local_day(now, ZoneInfo(tenant.timezone))
    if mail.has_notice_since(session, extension.owner_user_id, Kind.BUDGET, today.start):
        return False
    text = "Little is left of your " + " and ".join(low) + ". Calls stop when it runs out."
    return mail.enqueue(
        session,
        user_id=extension.owner_user_id,
        kind=Kind.BUDGET,
        # `limits` lets the mail name them in the owner's language; `text` is the English.
        details={"text": text, "limits": low},
    )
