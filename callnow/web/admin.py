"""Platform admin (sqladmin): tenants, users, extensions and CallNow profiles.

Every change goes through the same checks as the CLI's: IDs are normalised and reserved words
refused, external numbers stored as E.164, passwords hashed with argon2.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from sqladmin import Admin, ModelView
from sqladmin.authentication import AuthenticationBackend
from sqlalchemy import Engine
from wtforms import PasswordField

from callnow.config import Settings
from callnow.domain.phone import parse_owner_number
from callnow.store import accounts, audit, provisioning, retired_ids
from callnow.store.db import make_session_factory
from callnow.store.models import Extension, Profile, Tenant, User, utcnow


class PlatformAdminAuth(AuthenticationBackend):
    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(
            secret_key=settings.web.secret_key,
            session_cookie="callnow_admin",
            same_site="lax",
            https_only=settings.web.public_base_url.startswith("https://"),
        )
        self._sessions = make_session_factory(engine)

    async def login(self, request: Request) -> bool:
        form = await request.form(max_files=0, max_fields=10)
        email, password = str(form.get("username", ""))[:254], str(form.get("password", ""))[:256]
        with self._sessions() as session, session.begin():
            user = accounts.authenticate(session, email, password)
            if user is None or user.role != "platform_admin":
                return False
            request.session.clear()
            request.session.update(user_id=user.id)
        return True

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        user_id = request.session.get("user_id")
        if not isinstance(user_id, int):
            return False
        with self._sessions() as session:
            user = session.get(User, user_id)
            return bool(user and user.is_active and user.role == "platform_admin")


class AuditedView(ModelView):
    """Every save in the admin lands in the audit log with the admin's identity."""

    async def after_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        with self.session_maker() as session, session.begin():
            actor = session.get(User, request.session.get("user_id") or 0)
            shown = {k: str(v) for k, v in data.items() if k != "password_hash"}
            audit.record(
                session,
                actor=actor,
                action=f"{model.__tablename__}.{'create' if is_created else 'update'}",
                subject=str(model)[:80],
                tenant_id=getattr(model, "tenant_id", None),
                details=shown,
                via="admin",
            )


class TenantAdmin(AuditedView, model=Tenant):
    column_list = [
        Tenant.id,
        Tenant.name,
        Tenant.product_line,
        Tenant.region,
        Tenant.timezone,
        Tenant.call_api_access,
    ]
    column_searchable_list = [Tenant.name]
    form_excluded_columns = [Tenant.created_at, Tenant.extensions]
    can_delete = False


class UserAdmin(AuditedView, model=User):
    column_list = [User.id, User.email, User.role, User.tenant, User.is_active]
    column_searchable_list = [User.email]
    column_details_exclude_list = [User.password_hash]
    form_excluded_columns = [User.created_at]
    form_overrides = {"password_hash": PasswordField}
    column_labels = {User.password_hash: "Password (leave empty to keep)"}
    can_delete = False

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        data["email"] = accounts.normalise_email(data.get("email") or "")
        password = data.get("password_hash") or ""
        if password:
            data["password_hash"] = accounts.hash_password(password)
        elif is_created:
            raise ValueError("A new user needs a password.")
        else:
            data.pop("password_hash", None)


class ExtensionAdmin(AuditedView, model=Extension):
    column_list = [
        Extension.id,
        Extension.internal_number,
        Extension.external_number,
        Extension.display_name,
        Extension.tenant,
        Extension.owner,
    ]
    column_searchable_list = [Extension.internal_number, Extension.display_name]
    form_excluded_columns = [Extension.profile]
    can_delete = False

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        internal = (data.get("internal_number") or "").strip()
        if not internal.isdigit():
            raise ValueError("An internal number is digits only.")
        data["internal_number"] = internal
        tenant = data.get("tenant") or getattr(model, "tenant", None)
        region = tenant.region if isinstance(tenant, Tenant) else "AU"
        data["external_number"] = parse_owner_number(data.get("external_number") or "", region)


class ProfileAdmin(AuditedView, model=Profile):
    name = "CallNow profile"
    column_list = [
        Profile.id,
        Profile.callnow_id,
        Profile.extension,
        Profile.enabled,
        Profile.do_not_allow,
        Profile.image_validation,
    ]
    column_searchable_list = [Profile.callnow_id]
    form_excluded_columns = [Profile.windows, Profile.rules, Profile.updated_at]
    can_delete = False

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        # The same allocation rule as `callnow admin enable-callnow`.
        chosen = data.get("extension") or getattr(model, "extension", None)
        extension_id = chosen.id if isinstance(chosen, Extension) else chosen
        with self.session_maker() as session:
            extension = session.get(Extension, int(extension_id)) if extension_id else None
            if extension is None:
                raise ValueError("A CallNow profile belongs to an extension.")
            try:
                data["callnow_id"] = provisioning.checked_callnow_id(
                    session, extension, data.get("callnow_id") or ""
                )
            except provisioning.ProvisioningError as exc:
                raise ValueError(str(exc)) from exc
            old_id = None if is_created else getattr(model, "callnow_id", None)
            if old_id and old_id != data["callnow_id"]:
                # As in the portal and the CLI: the old ID keeps redirecting and is held.
                retired_ids.retire(session, model.id, old_id, data["callnow_id"], utcnow())
                session.commit()


def mount(app: FastAPI, engine: Engine, settings: Settings) -> Admin:
    admin = Admin(
        app,
        engine=engine,
        base_url="/admin",
        title="CallNow admin",
        authentication_backend=PlatformAdminAuth(settings, engine),
    )
    for view in (TenantAdmin, UserAdmin, ExtensionAdmin, ProfileAdmin):
        admin.add_view(view)
    return admin
