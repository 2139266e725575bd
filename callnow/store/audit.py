"""The audit log: who changed a profile, rules, a deck or a user, and what they set."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callnow.store.models import AuditEntry, Profile, User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    subject: str,
    tenant_id: int | None = None,
    details: dict[str, Any] | None = None,
    via: str = "",
) -> None:
    label = actor.email if actor is not None else "system"
    session.add(
        AuditEntry(
            actor_user_id=actor.id if actor is not None else None,
            actor=f"{label} ({via})" if via else label,
            tenant_id=tenant_id if tenant_id is not None else (actor.tenant_id if actor else None),
            action=action[:40],
            subject=subject[:80],
            details=details,
        )
    )


def record_for_page(
    session: Session,
    profile: Profile,
    *,
    actor: User | None,
    action: str,
    via: str,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit row about an owner's page, filed under the page's tenant."""
    record(
        session,
        actor=actor,
        action=action,
        subject=profile.callnow_id,
        tenant_id=profile.extension.tenant_id,
        via=via,
        details=details,
    )


def recent(session: Session, tenant_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(AuditEntry.tenant_id == tenant_id)
    return list(session.scalars(query))
