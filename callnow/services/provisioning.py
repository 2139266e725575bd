"""Provisioning use cases for a provider's systems: tenants, users, extensions, pages, budgets
and the do-not-call list, with the same checks as the CLI and the admin pages (the store's
`provisioning` and `page_settings`), confined to what a provider token may reach, and audited.

Every refusal is a `Refused` with a stable `code`; the provider API turns it into a problem
answer, and nothing has been written when it is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from callnow.billing.budgets import UNCHANGED, LimitChange, budget_row, set_budget
from callnow.domain.phone import InvalidNumber, parse_visitor_number
from callnow.i18n import DEFAULT_LANGUAGE, SHIPPED
from callnow.services import page_settings
from callnow.store import accounts, audit, do_not_call, profiles, provider_tokens, tenancy
from callnow.store import provisioning as store
from callnow.store.billing_models import BudgetRow
from callnow.store.models import DoNotCall, Extension, Profile, Tenant, User, utcnow
from callnow.store.provider_models import ProviderToken

SCOPES = (
    "tenants:read",
    "tenants:write",
    "pages:write",
    "budgets:write",
    "do_not_call:read",
    "do_not_call:write",
)
# Roles a provider may give: platform admins are made only on the platform itself.
PROVIDER_ROLES = ("owner", "tenant_admin")
# A PBX with more extensions syncs in several calls (each is idempotent); 100 items also fit
# in the web's default body limit (`web.max_body_bytes`, 16 KiB).
MAX_BULK_EXTENSIONS = 100
MAX_LIMIT_MINOR = 10**12

Kind = Literal["invalid", "not_found", "conflict", "forbidden"]


class Refused(Exception):
    """Nothing was changed; `code` is stable, the message says why in a sentence."""

    def __init__(
        self, kind: Kind, code: str, message: str, errors: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.errors = errors


@dataclass(frozen=True)
class Caller:
    """Who calls: a provider token, bound to one tenant or to the whole platform."""

    token_id: str
    tenant_id: int | None

    @property
    def via(self) -> str:
        return f"provider token {self.token_id}"


def _audit(
    session: Session,
    caller: Caller,
    action: str,
    subject: str,
    tenant_id: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=None,
        action=f"provider.{action}",
        subject=subject,
        tenant_id=tenant_id,
        via=caller.via,
        details=details,
    )


def _invalid(code: str, exc: Exception) -> Refused:
    return Refused("invalid", code, str(exc))


# ---------------------------------------------------------------------------- tokens (CLI)


def issue_token(
    session: Session, *, label: str, scopes: Sequence[str], tenant_name: str | None
) -> provider_tokens.IssuedToken:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise Refused(
            "invalid", "unknown_scope", f"Scopes are some of {', '.join(SCOPES)}; not {unknown}."
        )
    if len(label) > 60:
        raise Refused("invalid", "invalid_label", "A token's label is at most 60 characters.")
    tenant = None
    if tenant_name is not None:
        tenant = store.tenant_by_name(session, tenant_name)
        if tenant is None:
            raise Refused("not_found", "tenant_not_found", f"No tenant named '{tenant_name}'.")
    issued = provider_tokens.issue(
        session, label=label, scopes=scopes, tenant_id=tenant.id if tenant else None
    )
    audit.record(
        session,
        actor=None,
        action="provider.token.create",
        subject=issued.token.token_id,
        tenant_id=issued.token.tenant_id,
        via="cli",
        details={"scopes": issued.token.scopes, "label": issued.token.label},
    )
    return issued


def revoke_token(session: Session, token_id: str) -> ProviderToken:
    token = provider_tokens.revoke(session, token_id.strip())
    if token is None:
        raise Refused("not_found", "token_not_found", f"No provider token {token_id}.")
    audit.record(
        session,
        actor=None,
        action="provider.token.revoke",
        subject=token.token_id,
        tenant_id=token.tenant_id,
        via="cli",
    )
    return token


# ---------------------------------------------------------------------------- tenants


def _tenant(session: Session, caller: Caller, tenant_id: int) -> Tenant:
    """The tenant, if this caller may reach it; another tenant's looks the same as none."""
    tenant = store.tenant_by_id(session, tenant_id)
    if tenant is None or (caller.tenant_id is not None and tenant.id != caller.tenant_id):
        raise Refused("not_found", "tenant_not_found", "No such tenant among yours.")
    return tenant


def _platform_only(caller: Caller, what: str) -> None:
    if caller.tenant_id is not None:
        raise Refused(
            "forbidden",
            "platform_token_required",
            f"{what} needs a token that is not bound to one tenant.",
        )


def list_tenants(session: Session, caller: Caller, limit: int, offset: int) -> list[Tenant]:
    return tenancy.tenants_page(session, tenant_id=caller.tenant_id, limit=limit, offset=offset)


def get_tenant(session: Session, caller: Caller, tenant_id: int) -> Tenant:
    return _tenant(session, caller, tenant_id)


@dataclass(frozen=True)
class TenantFields:
    name: str | None = None
    product_line: str | None = None
    region: str | None = None
    timezone: str | None = None
    call_api_access: bool | None = None


def create_tenant(session: Session, caller: Caller, wanted: TenantFields) -> Tenant:
    _platform_only(caller, "Creating a tenant")
    if wanted.name is None:
        raise Refused("invalid", "invalid_tenant", "A tenant needs a name.")
    if store.tenant_by_name(session, wanted.name) is not None:
        raise Refused("conflict", "tenant_exists", f"A tenant named '{wanted.name}' exists.")
    try:
        tenant = store.create_tenant(
            session,
            wanted.name,
            product_line=wanted.product_line or "pbx",
            region=wanted.region or "AU",
            timezone=wanted.timezone or "Australia/Sydney",
            call_api_access=True if wanted.call_api_access is None else wanted.call_api_access,
        )
    except store.ProvisioningError as exc:
        raise _invalid("invalid_tenant", exc) from exc
    _audit(session, caller, "tenant.create", tenant.name, tenant.id, _fields(wanted))
    return tenant


def _fields(wanted: object) -> dict[str, Any]:
    return {k: v for k, v in vars(wanted).items() if v is not None and k != "password"}


def update_tenant(session: Session, caller: Caller, tenant_id: int, wanted: TenantFields) -> Tenant:
    tenant = _tenant(session, caller, tenant_id)
    if wanted.name is not None:
        other = store.tenant_by_name(session, wanted.name)
        if other is not None and other is not tenant:
            raise Refused("conflict", "tenant_exists", f"A tenant named '{wanted.name}' exists.")
    try:
        fields = store.checked_tenant_fields(
            session,
            name=wanted.name,
            product_line=wanted.product_line,
            region=wanted.region,
            timezone=wanted.timezone,
            tenant=tenant,
        )
    except store.ProvisioningError as exc:
        raise _invalid("invalid_tenant", exc) from exc
    for name, value in fields.items():
        setattr(tenant, name, value)
    if wanted.call_api_access is not None:
        tenant.call_api_access = wanted.call_api_access
    _audit(session, caller, "tenant.update", tenant.name, tenant.id, _fields(wanted))
    session.flush()
    return tenant


def delete_tenant(session: Session, caller: Caller, tenant_id: int) -> None:
    _platform_only(caller, "Deleting a tenant")
    tenant = _tenant(session, caller, tenant_id)
    name = tenant.name
    if not tenancy.delete_tenant(session, tenant):
        raise Refused(
            "conflict",
            "tenant_not_empty",
            "The tenant still has users, extensions, charges or other records; remove them"
            " first, or suspend the tenant instead.",
        )
    _audit(session, caller, "tenant.delete", name, None, {"tenant_id": tenant_id})


def set_tenant_suspended(
    session: Session, caller: Caller, tenant_id: int, suspended: bool
) -> Tenant:
    tenant = _tenant(session, caller, tenant_id)
    if suspended and tenant.suspended_at is None:
        tenant.suspended_at = utcnow()
    elif not suspended:
        tenant.suspended_at = None
    action = "tenant.suspend" if suspended else "tenant.resume"
    _audit(session, caller, action, tenant.name, tenant.id)
    session.flush()
    return tenant


# ---------------------------------------------------------------------------- users


def _user(session: Session, caller: Caller, user_id: int) -> User:
    user = tenancy.user_by_id(session, user_id)
    if (
        user is None
        or user.tenant_id is None
        or (caller.tenant_id is not None and user.tenant_id != caller.tenant_id)
    ):
        raise Refused("not_found", "user_not_found", "No such user among yours.")
    return user


def list_users(
    session: Session, caller: Caller, tenant_id: int, limit: int, offset: int
) -> list[User]:
    tenant = _tenant(session, caller, tenant_id)
    return tenancy.users_of(session, tenant.id, limit=limit, offset=offset)


def get_user(session: Session, caller: Caller, user_id: int) -> User:
    return _user(session, caller, user_id)


@dataclass(frozen=True)
class UserFields:
    email: str | None = None
    password: str | None = None
    role: str | None = None
    display_name: str | None = None
    is_active: bool | None = None
    # The owner's language (portal, e-mails, phone prompts): a shipped language's code.
    language: str | None = None


def _role(role: str | None) -> None:
    if role is not None and role not in PROVIDER_ROLES:
        raise Refused("invalid", "invalid_role", f"The role is one of {', '.join(PROVIDER_ROLES)}.")


def _language(language: str | None) -> None:
    if language is not None and language not in SHIPPED:
        raise Refused(
            "invalid", "invalid_language", f"The language is one of {', '.join(SHIPPED)}."
        )


def create_user(session: Session, caller: Caller, tenant_id: int, wanted: UserFields) -> User:
    tenant = _tenant(session, caller, tenant_id)
    _role(wanted.role)
    _language(wanted.language)
    if wanted.email is None or wanted.password is None:
        raise Refused("invalid", "invalid_user", "A user needs an email and a password.")
    if accounts.by_email(session, wanted.email) is not None:
        raise Refused("conflict", "user_exists", "A user with that email exists already.")
    try:
        user = store.create_user(
            session,
            wanted.email,
            wanted.password,
            role=wanted.role or "owner",
            tenant=tenant,
            display_name=wanted.display_name or "",
            language=wanted.language or DEFAULT_LANGUAGE,
        )
    except store.ProvisioningError as exc:
        raise _invalid("invalid_user", exc) from exc
    if wanted.is_active is not None:
        user.is_active = wanted.is_active
    _audit(session, caller, "user.create", user.email, tenant.id, _fields(wanted))
    return user


def update_user(session: Session, caller: Caller, user_id: int, wanted: UserFields) -> User:
    user = _user(session, caller, user_id)
    _role(wanted.role)
    _language(wanted.language)
    if wanted.email is not None:
        raise Refused("invalid", "email_fixed", "A user's email cannot be changed here.")
    password_hash = None
    if wanted.password is not None:
        try:
            password_hash = accounts.hash_password(wanted.password)
        except accounts.WeakPassword as exc:
            raise _invalid("invalid_user", exc) from exc
    if password_hash is not None:
        user.password_hash = password_hash
    if wanted.role is not None:
        user.role = wanted.role
    if wanted.display_name is not None:
        user.display_name = wanted.display_name.strip()[:80]
    if wanted.is_active is not None:
        user.is_active = wanted.is_active
    if wanted.language is not None:
        user.language = wanted.language
    details = _fields(wanted) | ({"password": "changed"} if password_hash else {})
    _audit(session, caller, "user.update", user.email, user.tenant_id, details)
    session.flush()
    return user


def delete_user(session: Session, caller: Caller, user_id: int) -> None:
    user = _user(session, caller, user_id)
    email, tenant_id = user.email, user.tenant_id
    if not tenancy.delete_user(session, user):
        raise Refused(
            "conflict",
            "user_in_use",
            "The user still owns extensions or has keys, requests or audit records; set"
            " is_active to false instead.",
        )
    _audit(session, caller, "user.delete", email, tenant_id, {"user_id": user_id})


# ---------------------------------------------------------------------------- extensions


def _extension(session: Session, caller: Caller, internal_number: str) -> Extension:
    extension = store.extension_by_internal(session, internal_number)
    if extension is None or (
        caller.tenant_id is not None and extension.tenant_id != caller.tenant_id
    ):
        raise Refused("not_found", "extension_not_found", "No such extension among yours.")
    return extension


def _owner_in(session: Session, tenant: Tenant, email: str) -> User:
    owner = accounts.by_email(session, email)
    if owner is None or owner.tenant_id != tenant.id:
        raise Refused("invalid", "unknown_owner", f"No user {email} in this tenant.")
    return owner


def list_extensions(
    session: Session, caller: Caller, tenant_id: int, limit: int, offset: int
) -> list[Extension]:
    tenant = _tenant(session, caller, tenant_id)
    return tenancy.extensions_of(session, tenant.id, limit=limit, offset=offset)


def get_extension(session: Session, caller: Caller, internal_number: str) -> Extension:
    return _extension(session, caller, internal_number)


@dataclass(frozen=True)
class ExtensionFields:
    internal_number: str
    external_number: str
    display_name: str = ""
    owner_email: str | None = None  # None: no owner


def create_extension(
    session: Session, caller: Caller, tenant_id: int, wanted: ExtensionFields
) -> Extension:
    tenant = _tenant(session, caller, tenant_id)
    owner = _owner_in(session, tenant, wanted.owner_email) if wanted.owner_email else None
    if store.extension_by_internal(session, wanted.internal_number) is not None:
        raise Refused(
            "conflict",
            "extension_exists",
            f"The internal number {wanted.internal_number.strip()} is taken on this platform.",
        )
    try:
        extension = store.create_extension(
            session,
            tenant,
            internal_number=wanted.internal_number,
            external_number=wanted.external_number,
            display_name=wanted.display_name,
            owner=owner,
        )
    except store.ProvisioningError as exc:
        raise _invalid("invalid_extension", exc) from exc
    _audit(session, caller, "extension.create", extension.internal_number, tenant.id, vars(wanted))
    return extension


@dataclass(frozen=True)
class ExtensionChanges:
    external_number: str | None = None
    display_name: str | None = None
    owner_email: str | None = None
    clear_owner: bool = False


def update_extension(
    session: Session, caller: Caller, internal_number: str, wanted: ExtensionChanges
) -> Extension:
    extension = _extension(session, caller, internal_number)
    tenant = extension.tenant
    external = None
    if wanted.external_number is not None:
        try:
            external = store.checked_external_number(tenant, wanted.external_number)
        except store.ProvisioningError as exc:
            raise _invalid("invalid_extension", exc) from exc
    owner = _owner_in(session, tenant, wanted.owner_email) if wanted.owner_email else None
    if external is not None:
        extension.external_number = external
    if wanted.display_name is not None:
        extension.display_name = wanted.display_name.strip()[:80]
    if owner is not None:
        extension.owner_user_id = owner.id
    elif wanted.clear_owner:
        extension.owner_user_id = None
    _audit(
        session,
        caller,
        "extension.update",
        extension.internal_number,
        tenant.id,
        {k: v for k, v in vars(wanted).items() if v not in (None, False)},
    )
    session.flush()
    session.refresh(extension)
    return extension


def delete_extension(session: Session, caller: Caller, internal_number: str) -> None:
    extension = _extension(session, caller, internal_number)
    internal, tenant_id = extension.internal_number, extension.tenant_id
    if not tenancy.delete_extension(session, extension):
        raise Refused(
            "conflict",
            "extension_has_history",
            "The extension's page has requests or charges; suspend its page instead.",
        )
    _audit(session, caller, "extension.delete", internal, tenant_id)


@dataclass
class BulkReport:
    """What a bulk upsert did (or, in a dry run, would do), by internal number."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # internal number -> the fields that differ, as {"field": [old, new]}
    changes: dict[str, dict[str, list[str | None]]] = field(default_factory=dict)


def bulk_upsert_extensions(
    session: Session,
    caller: Caller,
    tenant_id: int,
    items: Sequence[ExtensionFields],
    *,
    dry_run: bool,
) -> BulkReport:
    """Make the tenant's extensions match the PBX's list: create the missing ones, update
    those that differ, leave the rest alone. All or nothing: any bad item refuses the batch."""
    tenant = _tenant(session, caller, tenant_id)
    if len(items) > MAX_BULK_EXTENSIONS:
        raise Refused(
            "invalid", "too_many_items", f"At most {MAX_BULK_EXTENSIONS} extensions per call."
        )
    errors: dict[str, str] = {}
    wanted: dict[str, tuple[str, str, int | None]] = {}
    owners: dict[str, User | None] = {}
    for index, item in enumerate(items):
        where = f"extensions[{index}]"
        try:
            internal = store.checked_internal_number(item.internal_number)
            external = store.checked_external_number(tenant, item.external_number)
        except store.ProvisioningError as exc:
            errors[where] = str(exc)
            continue
        if internal in wanted:
            errors[where] = f"The internal number {internal} appears twice."
            continue
        email = item.owner_email
        if email and email not in owners:
            found = accounts.by_email(session, email)
            owners[email] = found if found and found.tenant_id == tenant.id else None
        if email and owners[email] is None:
            errors[where] = f"No user {email} in this tenant."
            continue
        owner = owners[email] if email else None
        wanted[internal] = (external, item.display_name.strip()[:80], owner.id if owner else None)
    existing = tenancy.extensions_by_internal(session, wanted)
    for internal, extension in existing.items():
        if extension.tenant_id != tenant.id:
            errors[internal] = f"The internal number {internal} belongs to another tenant."
    if errors:
        raise Refused("invalid", "invalid_extensions", "; ".join(errors.values()), errors)

    report = BulkReport(dry_run=dry_run)
    for internal, (external, name, owner_id) in wanted.items():
        current = existing.get(internal)
        if current is None:
            report.created.append(internal)
            if not dry_run:
                session.add(
                    Extension(
                        tenant_id=tenant.id,
                        internal_number=internal,
                        external_number=external,
                        display_name=name,
                        owner_user_id=owner_id,
                    )
                )
            continue
        old = (current.external_number, current.display_name, current.owner_user_id)
        names = ("external_number", "display_name", "owner_user_id")
        diff = {
            n: [None if o is None else str(o), None if v is None else str(v)]
            for n, o, v in zip(names, old, (external, name, owner_id), strict=True)
            if o != v
        }
        if not diff:
            report.unchanged.append(internal)
            continue
        report.updated.append(internal)
        report.changes[internal] = diff
        if not dry_run:
            current.external_number, current.display_name, current.owner_user_id = (
                external,
                name,
                owner_id,
            )
    if not dry_run and (report.created or report.updated):
        _audit(
            session,
            caller,
            "extensions.bulk_upsert",
            tenant.name,
            tenant.id,
            {"created": report.created, "updated": report.updated},
        )
        session.flush()
    return report


# ---------------------------------------------------------------------------- pages


def _page(session: Session, caller: Caller, callnow_id: str) -> Profile:
    profile = profiles.by_callnow_id(session, callnow_id) if len(callnow_id) <= 64 else None
    if profile is None or (
        caller.tenant_id is not None and profile.extension.tenant_id != caller.tenant_id
    ):
        raise Refused("not_found", "page_not_found", "No such CallNow page among yours.")
    return profile


def list_pages(
    session: Session, caller: Caller, tenant_id: int, limit: int, offset: int
) -> list[Profile]:
    tenant = _tenant(session, caller, tenant_id)
    return tenancy.pages_of(session, tenant.id, limit=limit, offset=offset)


def get_page(session: Session, caller: Caller, callnow_id: str) -> Profile:
    return _page(session, caller, callnow_id)


def _change_page(
    session: Session, caller: Caller, profile: Profile, changes: page_settings.PageChanges
) -> None:
    try:
        page_settings.change_page(
            session,
            profile,
            changes,
            actor=None,
            via=caller.via,
            details=_page_details(changes),
        )
    except page_settings.InvalidChanges as invalid:
        kind: Kind = "conflict" if invalid.taken else "invalid"
        code = "callnow_id_taken" if invalid.taken else "invalid_page"
        raise Refused(kind, code, str(invalid), invalid.errors) from invalid


def _page_details(changes: page_settings.PageChanges) -> dict[str, Any]:
    details: dict[str, Any] = {k: v for k, v in vars(changes).items() if v is not None}
    details["switches"] = dict(changes.switches)
    if changes.windows is not None:
        details["windows"] = [vars(w) for w in changes.windows]
    return details


def create_page(
    session: Session,
    caller: Caller,
    internal_number: str,
    callnow_id: str,
    settings: page_settings.PageChanges,
) -> Profile:
    """Give an extension its CallNow page, with the ID checked as the CLI and admin check it."""
    extension = _extension(session, caller, internal_number)
    if extension.profile is not None:
        raise Refused(
            "conflict",
            "page_exists",
            f"Extension {extension.internal_number} has a page already"
            f" ('{extension.profile.callnow_id}').",
        )
    try:
        wanted = store.checked_callnow_id(session, extension, callnow_id)
    except store.ProvisioningError as exc:
        taken = profiles.by_callnow_id(session, callnow_id.strip()[:64]) is not None
        kind: Kind = "conflict" if taken else "invalid"
        raise Refused(kind, "callnow_id_taken" if taken else "invalid_page", str(exc)) from exc
    savepoint = session.begin_nested()  # a page with bad settings is not left half made
    profile = store.enable_callnow(session, extension, wanted)
    try:
        _change_page(session, caller, profile, settings)
    except Refused:
        savepoint.rollback()
        raise
    savepoint.commit()
    _audit(session, caller, "page.create", profile.callnow_id, extension.tenant_id)
    return profile


def update_page(
    session: Session, caller: Caller, callnow_id: str, changes: page_settings.PageChanges
) -> Profile:
    profile = _page(session, caller, callnow_id)
    _change_page(session, caller, profile, changes)
    return profile


def delete_page(session: Session, caller: Caller, callnow_id: str) -> None:
    profile = _page(session, caller, callnow_id)
    subject, tenant_id = profile.callnow_id, profile.extension.tenant_id
    if tenancy.page_has_requests(session, profile.id) or not tenancy.delete_page(session, profile):
        raise Refused("conflict", "page_has_history", "The page has requests; suspend it instead.")
    _audit(session, caller, "page.delete", subject, tenant_id)


def set_page_suspended(
    session: Session, caller: Caller, callnow_id: str, suspended: bool
) -> Profile:
    profile = _page(session, caller, callnow_id)
    if suspended and profile.suspended_at is None:
        profile.suspended_at = utcnow()
    elif not suspended:
        profile.suspended_at = None
    action = "page.suspend" if suspended else "page.resume"
    _audit(session, caller, action, profile.callnow_id, profile.extension.tenant_id)
    session.flush()
    return profile


# ---------------------------------------------------------------------------- budgets


@dataclass(frozen=True)
class BudgetTarget:
    tenant_id: int | None = None
    internal_number: str | None = None


@dataclass(frozen=True)
class BudgetLimits:
    daily_cap_minor: int | None
    prepaid_balance_minor: int | None
    credit_limit_minor: int | None
    balance_set_at: datetime | None


def _budget_owner(
    session: Session, caller: Caller, target: BudgetTarget
) -> tuple[dict[str, int], int, str]:
    if target.internal_number is not None:
        extension = _extension(session, caller, target.internal_number)
        return {"extension_id": extension.id}, extension.tenant_id, extension.internal_number
    assert target.tenant_id is not None
    tenant = _tenant(session, caller, target.tenant_id)
    return {"tenant_id": tenant.id}, tenant.id, tenant.name


def get_budget(session: Session, caller: Caller, target: BudgetTarget) -> BudgetLimits:
    owner, _, _ = _budget_owner(session, caller, target)
    return _limits(budget_row(session, **owner))


def _limits(row: BudgetRow | None) -> BudgetLimits:
    if row is None:
        return BudgetLimits(None, None, None, None)
    return BudgetLimits(
        row.daily_cap_minor, row.prepaid_balance_minor, row.credit_limit_minor, row.balance_set_at
    )


def set_limits(
    session: Session,
    caller: Caller,
    target: BudgetTarget,
    changes: dict[str, int | None],
) -> BudgetLimits:
    """Change the named limits (None switches one off); limits not named stay as they are."""
    owner, tenant_id, subject = _budget_owner(session, caller, target)
    names = ("daily_cap_minor", "prepaid_balance_minor", "credit_limit_minor")
    unknown = set(changes) - set(names)
    if unknown:
        raise Refused("invalid", "invalid_budget", f"Unknown limits: {', '.join(sorted(unknown))}.")
    for name, value in changes.items():
        if value is not None and not 0 <= value <= MAX_LIMIT_MINOR:
            raise Refused(
                "invalid", "invalid_budget", f"{name} is 0 to {MAX_LIMIT_MINOR} minor units."
            )
    limits: dict[str, LimitChange] = {n: changes.get(n, UNCHANGED) for n in names}
    row = set_budget(
        session,
        utcnow(),
        extension_id=owner.get("extension_id"),
        tenant_id=owner.get("tenant_id"),
        daily_cap_minor=limits["daily_cap_minor"],
        prepaid_balance_minor=limits["prepaid_balance_minor"],
        credit_limit_minor=limits["credit_limit_minor"],
    )
    _audit(session, caller, "budget.set", subject, tenant_id, dict(changes))
    return _limits(row)


# ---------------------------------------------------------------------------- do-not-call


def _e164(number: str, region: str) -> str:
    try:
        return parse_visitor_number(number, region).e164
    except InvalidNumber as exc:
        raise _invalid("invalid_number", exc) from exc


def list_do_not_call(session: Session, caller: Caller) -> list[DoNotCall]:
    _platform_only(caller, "The platform's do-not-call list")
    return do_not_call.listed(session)


def add_do_not_call(
    session: Session, caller: Caller, number: str, reason: str, region: str
) -> tuple[str, bool]:
    """The number as E.164 and whether it was added (False: it was on the list already)."""
    _platform_only(caller, "The platform's do-not-call list")
    if len(reason) > 200:
        raise Refused("invalid", "invalid_reason", "A reason is at most 200 characters.")
    e164 = _e164(number, region)
    added = do_not_call.add(session, e164, reason)
    if added:
        _audit(session, caller, "do_not_call.add", e164, None, {"reason": reason})
    return e164, added


def remove_do_not_call(session: Session, caller: Caller, number: str, region: str) -> str:
    _platform_only(caller, "The platform's do-not-call list")
    e164 = _e164(number, region)
    if not do_not_call.remove(session, e164):
        raise Refused("not_found", "number_not_listed", f"{e164} is not on the list.")
    _audit(session, caller, "do_not_call.remove", e164, None)
    return e164
