"""Provisioning tenants, users, extensions and CallNow profiles (admin pages and CLI share it)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from callnow.domain.callnow_id import held_refusal, normalise_callnow_id
from callnow.domain.phone import parse_owner_number
from callnow.i18n import DEFAULT_LANGUAGE, SHIPPED
from callnow.store import accounts, profiles, retired_ids
from callnow.store.models import Extension, Profile, Tenant, User, utcnow

ROLES = ("platform_admin", "tenant_admin", "owner")


class ProvisioningError(ValueError):
    """The change cannot be made; the message says why."""


def create_tenant(
    session: Session,
    name: str,
    *,
    product_line: str = "pbx",
    region: str = "AU",
    timezone: str = "Australia/Sydney",
    call_api_access: bool = True,
) -> Tenant:
    fields = checked_tenant_fields(
        session, name=name, product_line=product_line, region=region, timezone=timezone
    )
    tenant = Tenant(call_api_access=call_api_access, **fields)
    session.add(tenant)
    session.flush()
    return tenant


def checked_tenant_fields(
    session: Session,
    *,
    name: str | None = None,
    product_line: str | None = None,
    region: str | None = None,
    timezone: str | None = None,
    tenant: Tenant | None = None,
) -> dict[str, str]:
    """The given fields of a new tenant (or of `tenant`, changed), normalised and checked."""
    fields: dict[str, str] = {}
    if name is not None:
        name = name.strip()
        if not 1 <= len(name) <= 120:
            raise ProvisioningError("A tenant name is 1 to 120 characters.")
        other = tenant_by_name(session, name)
        if other is not None and other is not tenant:
            raise ProvisioningError(f"A tenant named '{name}' exists already.")
        fields["name"] = name
    if product_line is not None:
        if product_line not in ("pbx", "home"):
            raise ProvisioningError("The product line is 'pbx' or 'home'.")
        fields["product_line"] = product_line
    if region is not None:
        region = region.strip().upper()
        if len(region) != 2 or not region.isalpha() or not region.isascii():
            raise ProvisioningError("The region is a two-letter country code such as AU.")
        fields["region"] = region
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ProvisioningError(f"'{timezone}' is not a known time zone.") from exc
        fields["timezone"] = timezone
    return fields


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: str = "owner",
    tenant: Tenant | None = None,
    display_name: str = "",
    language: str = DEFAULT_LANGUAGE,
) -> User:
    email = accounts.normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise ProvisioningError("That is not an email address.")
    if role not in ROLES:
        raise ProvisioningError(f"The role is one of {', '.join(ROLES)}.")
    if role != "platform_admin" and tenant is None:
        raise ProvisioningError("Only a platform admin may be without a tenant.")
    if language not in SHIPPED:
        raise ProvisioningError(f"The language is one of {', '.join(SHIPPED)}.")
    if accounts.by_email(session, email):
        raise ProvisioningError(f"A user with the email {email} exists already.")
    try:
        password_hash = accounts.hash_password(password)
    except accounts.WeakPassword as exc:
        raise ProvisioningError(str(exc)) from exc
    user = User(
        email=email,
        password_hash=password_hash,
        role=role,
        tenant_id=tenant.id if tenant else None,
        display_name=display_name.strip()[:80],
        language=language,
    )
    session.add(user)
    session.flush()
    return user


def create_extension(
    session: Session,
    tenant: Tenant,
    *,
    internal_number: str,
    external_number: str,
    display_name: str = "",
    owner: User | None = None,
) -> Extension:
    internal = checked_internal_number(internal_number)
    if session.scalars(select(Extension).where(Extension.internal_number == internal)).first():
        raise ProvisioningError(f"The internal number {internal} is taken on this platform.")
    extension = Extension(
        tenant_id=tenant.id,
        internal_number=internal,
        external_number=checked_external_number(tenant, external_number),
        display_name=display_name.strip()[:80],
        owner_user_id=checked_owner(tenant, owner),
    )
    session.add(extension)
    session.flush()
    return extension


def checked_internal_number(internal_number: str) -> str:
    internal = internal_number.strip()
    if not internal.isdigit() or not internal.isascii() or not 2 <= len(internal) <= 20:
        raise ProvisioningError("An internal number is 2 to 20 digits.")
    return internal


def checked_external_number(tenant: Tenant, external_number: str) -> str:
    """The extension's external number as E.164, read in the tenant's region."""
    try:
        return parse_owner_number(external_number, tenant.region)
    except ValueError as exc:
        raise ProvisioningError(f"External number: {exc}") from exc


def checked_owner(tenant: Tenant, owner: User | None) -> int | None:
    if owner is not None and owner.tenant_id != tenant.id:
        raise ProvisioningError("The owner must belong to the extension's tenant.")
    return owner.id if owner else None


def checked_callnow_id(session: Session, extension: Extension, callnow_id: str) -> str:
    """The normalised CallNow ID, if this extension may have it: its tenant has Call API access,
    the ID is well formed and not reserved, and no other extension's page uses it. The CLI and
    the platform admin both allocate IDs through this one check."""
    if not extension.tenant.call_api_access:
        raise ProvisioningError("CallNow can be enabled only for tenants with Call API access.")
    try:
        wanted = normalise_callnow_id(callnow_id)
    except ValueError as exc:
        raise ProvisioningError(str(exc)) from exc
    existing = profiles.by_callnow_id(session, wanted)
    if existing is not None and existing.extension_id != extension.id:
        raise ProvisioningError(f"The CallNow ID '{wanted}' is taken.")
    own = extension.profile.id if extension.profile is not None else None
    if retired_ids.held_for_another(session, wanted, own, utcnow()):
        raise ProvisioningError(held_refusal(wanted))
    return wanted


def enable_callnow(
    session: Session, extension: Extension, callnow_id: str, *, rename: bool = False
) -> Profile:
    """Turn CallNow on for an extension, allocating its ID (or re-enabling its profile).

    An existing page keeps its ID unless `rename` is given: renaming moves every printed link
    to a redirect, so it is never a side effect of re-enabling."""
    wanted = checked_callnow_id(session, extension, callnow_id)
    profile = session.scalars(select(Profile).where(Profile.extension_id == extension.id)).first()
    if profile is None:
        retired_ids.release(session, wanted)  # a hold that expired
        profile = Profile(extension_id=extension.id, callnow_id=wanted)
        session.add(profile)
    elif profile.callnow_id != wanted:
        if not rename:
            raise ProvisioningError(
                f"This extension's page is '{profile.callnow_id}'. Renaming it to '{wanted}' "
                "keeps the old address redirecting and holds it for a year; "
                "pass --rename to do so."
            )
        retired_ids.rename(session, profile, wanted, utcnow())
    profile.enabled = True
    session.flush()
    return profile


def extension_by_internal(session: Session, internal_number: str) -> Extension | None:
    query = select(Extension).where(Extension.internal_number == internal_number.strip())
    return session.scalars(query).first()


def tenants(session: Session) -> list[Tenant]:
    """Every tenant, by name."""
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


def tenant_by_id(session: Session, tenant_id: int) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.name == name.strip())).first()


DEMO_OWNER_EMAIL = "john@example.com"
DEMO_OWNER_PASSWORD = "callnow-demo"
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_ADMIN_PASSWORD = "callnow-admin"


def seed_demo(session: Session) -> bool:
    """Create the demo tenant, owner and `john_doe` page once; False when they exist."""
    if tenant_by_name(session, "Demo PBX") is not None:
        return False
    tenant = create_tenant(session, "Demo PBX")
    owner = create_user(
        session, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, tenant=tenant, display_name="John Doe"
    )
    create_user(session, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, role="platform_admin")
    extension = create_extension(
        session,
        tenant,
        internal_number="001002",
        external_number="02 9037 1234",
        display_name="John Doe",
        owner=owner,
    )
    profile = enable_callnow(session, extension, "john_doe")
    profile.welcome_message = "Hi, I'm John. Leave your number and I'll call you straight back."
    # The demo shows the whole flow without a CAPTCHA; real profiles start with it on.
    profile.image_validation = False
    profile.one_step_allowed = True
    return True
