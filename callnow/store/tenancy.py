"""Lists and removals of tenants' objects for the provider API (creation is `provisioning`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Delete, Update, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callnow.store.models import (
    AuditEntry,
    AvailabilityWindow,
    CallRequest,
    Extension,
    Profile,
    RuleRow,
    Tenant,
    User,
)


def tenants_page(
    session: Session, *, tenant_id: int | None, limit: int, offset: int
) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.id).limit(limit).offset(offset)
    if tenant_id is not None:
        query = query.where(Tenant.id == tenant_id)
    return list(session.scalars(query))


def users_of(session: Session, tenant_id: int, *, limit: int, offset: int) -> list[User]:
    query = select(User).where(User.tenant_id == tenant_id).order_by(User.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def extensions_of(session: Session, tenant_id: int, *, limit: int, offset: int) -> list[Extension]:
    query = select(Extension).where(Extension.tenant_id == tenant_id).order_by(Extension.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def extensions_by_internal(session: Session, numbers: Iterable[str]) -> dict[str, Extension]:
    """Every extension (of any tenant) with one of these internal numbers, by that number."""
    wanted = sorted(set(numbers))
    found: dict[str, Extension] = {}
    for start in range(0, len(wanted), 500):  # bounded IN lists
        query = select(Extension).where(Extension.internal_number.in_(wanted[start : start + 500]))
        found.update((e.internal_number, e) for e in session.scalars(query))
    return found


def pages_of(session: Session, tenant_id: int, *, limit: int, offset: int) -> list[Profile]:
    query = (
        select(Profile)
        .join(Extension, Profile.extension_id == Extension.id)
        .where(Extension.tenant_id == tenant_id)
        .order_by(Profile.id)
    )
    return list(session.scalars(query.limit(limit).offset(offset)))


def page_has_requests(session: Session, profile_id: int) -> bool:
    return bool(session.scalar(select(exists().where(CallRequest.profile_id == profile_id))))


def _delete_unreferenced(session: Session, statements: list[Delete | Update]) -> bool:
    """Run the statements in a savepoint; False (and nothing deleted) when a row still
    references what they remove: the database's foreign keys decide, not a list kept here."""
    session.flush()
    savepoint = session.begin_nested()
    try:
        for statement in statements:
            session.execute(statement)
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        return False
    session.expire_all()
    return True


def _page_rows(profile_id: int) -> list[Delete | Update]:
    return [
        delete(AvailabilityWindow).where(AvailabilityWindow.profile_id == profile_id),
        delete(RuleRow).where(RuleRow.profile_id == profile_id),
        delete(Profile).where(Profile.id == profile_id),
    ]


def delete_page(session: Session, profile: Profile) -> bool:
    return _delete_unreferenced(session, _page_rows(profile.id))


def delete_extension(session: Session, extension: Extension) -> bool:
    """The extension and its page, unless either has history (requests, charges, budgets)."""
    statements: list[Delete | Update] = []
    if extension.profile is not None:
        statements += _page_rows(extension.profile.id)
    statements.append(delete(Extension).where(Extension.id == extension.id))
    return _delete_unreferenced(session, statements)


def delete_user(session: Session, user: User) -> bool:
    return _delete_unreferenced(session, [delete(User).where(User.id == user.id)])


def delete_tenant(session: Session, tenant: Tenant) -> bool:
    """An empty tenant; its audit entries stay, no longer linked (their subjects name it)."""
    detach = update(AuditEntry).where(AuditEntry.tenant_id == tenant.id).values(tenant_id=None)
    return _delete_unreferenced(session, [detach, delete(Tenant).where(Tenant.id == tenant.id)])
