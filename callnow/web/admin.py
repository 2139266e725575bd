"""Platform admin (sqladmin): tenants, users, extensions, CallNow profiles and sessions.

Every change goes through the same checks as the CLI's: IDs are normalised and reserved words
refused, external numbers stored as E.164, passwords hashed with argon2. A new password, or a
user made inactive, ends that user's sessions. How the admin itself is guarded (sessions, login
throttle, CSRF, headers): `web.admin_guard`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio.to_thread
from fastapi import FastAPI, Request
from sqladmin import Admin, BaseView, expose
from sqladmin.authentication import login_required
from sqlalchemy import Engine
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from wtforms import Field, PasswordField
from wtforms.widgets import TextInput

from callnow.billing.money import format_minor
from callnow.billing.policy import policy_from
from callnow.domain.destination_policy import normalise_prefix_list
from callnow.domain.phone import parse_owner_number
from callnow.domain.sign_in import device_label
from callnow.store import accounts, audit, dashboard, provisioning, retired_ids, web_sessions
from callnow.store.models import Extension, Profile, Tenant, User, utcnow
from callnow.web import forms, sign_in
from callnow.web.admin_guard import AdminGate, PlatformAdminAuth, csrf_token, end_admin_session
from callnow.web.admin_records import RECORD_VIEWS, CallNowView
from callnow.web.admin_text import when, words
from callnow.web.context import AppState

TEMPLATES = Path(__file__).parent / "templates" / "admin"


def country_codes(values: list[str]) -> tuple[str, ...]:
    """Two-letter country codes, upper-cased; anything else refused with a reason."""
    wrong = [value for value in values if not re.fullmatch(r"[A-Za-z]{2}", value)]
    if wrong:
        raise ValueError(f"Not a two-letter country code: {', '.join(wrong[:5])}.")
    return tuple(sorted({value.upper() for value in values}))


class ListField(Field):
    """A JSON list typed as "NZ, GB" instead of a `[]` text area, checked by `normalise`."""

    widget = TextInput()

    def __init__(
        self,
        *args: Any,
        normalise: Callable[[list[str]], tuple[str, ...]] = normalise_prefix_list,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.normalise = normalise
        self.data: list[str] = []

    def _value(self) -> str:
        return ", ".join(self.data or [])

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = str(valuelist[0]) if valuelist else ""
        if len(text) > 2000:
            raise ValueError("At most 2000 characters.")
        items = [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]
        if len(items) > 100:
            raise ValueError("At most 100 entries.")
        self.data = list(self.normalise(items))


class AuditedView(CallNowView):
    """Every save in the admin lands in the audit log with the admin's identity."""

    @staticmethod
    async def _actor_id(request: Request) -> int | None:
        from sqladmin.authentication import get_current_user_id

        found = get_current_user_id(request)
        return found if isinstance(found, int) else None

    async def after_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        with self.session_maker() as session, session.begin():
            actor = session.get(User, await self._actor_id(request) or 0)
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
    column_formatters = {Tenant.product_line: lambda m, a: m.product_line.upper()}
    form_excluded_columns = [Tenant.created_at, Tenant.extensions]
    form_overrides = {
        "extra_countries": ListField,
        "blocked_prefixes": ListField,
        "allowed_prefixes": ListField,
    }
    # The same defaults as `callnow admin create-tenant` (provisioning.create_tenant).
    form_args = {
        "call_api_access": {"default": True},
        "product_line": {"default": "pbx"},
        "region": {"default": "AU"},
        "timezone": {"default": "Australia/Sydney"},
        "extra_countries": {
            "normalise": country_codes,
            "description": "Countries beyond its region it may call, e.g. NZ, GB.",
        },
        "blocked_prefixes": {"description": "Numbers it may never call, e.g. 61190, 6113."},
        "allowed_prefixes": {"description": "If any: the only prefixes it may call."},
    }
    can_delete = False

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        # The checks of `callnow admin create-tenant`, whose messages the form shows.
        name = str(data.get("name") or "").strip()
        if not 1 <= len(name) <= 120:
            raise ValueError("A tenant name is 1 to 120 characters.")
        data["name"] = name
        if data.get("product_line") not in ("pbx", "home"):
            raise ValueError("The product line is 'pbx' or 'home'.")
        region = str(data.get("region") or "").strip().upper()
        if len(region) != 2 or not region.isalpha():
            raise ValueError("The region is a two-letter country code such as AU.")
        data["region"] = region
        zone = str(data.get("timezone") or "").strip()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"'{zone}' is not a known time zone.") from exc
        data["timezone"] = zone


class UserAdmin(AuditedView, model=User):
    column_list = [User.id, User.email, User.role, User.tenant, User.is_active]
    column_searchable_list = [User.email]
    column_formatters = {User.role: words}
    column_formatters_detail = column_formatters
    column_details_exclude_list = [User.password_hash, User.tenant_id]
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

    async def after_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        await super().after_model_change(data, model, is_created, request)
        if is_created or not (data.get("password_hash") or not model.is_active):
            return
        # A new password or a deactivated account: every copy of every session ends now.
        with self.session_maker() as session, session.begin():
            web_sessions.revoke_all(session, model.id, utcnow())


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
    column_details_exclude_list = [Extension.tenant_id, Extension.owner_user_id]
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
    column_details_exclude_list = [Profile.extension_id]
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


class SessionsAdmin(BaseView):
    """Everyone's live sessions; an admin ends one, or all of a user's."""

    name = "Sessions"
    icon = "fa-solid fa-key"

    @expose("/sessions", methods=["GET", "POST"])
    async def sessions_page(self, request: Request) -> Response:
        state: AppState = request.app.state.callnow
        if request.method == "POST":  # its CSRF token was checked by `AdminGate`
            form = await request.form(max_files=0, max_fields=10)
            chosen = forms.field(form, "session_id", 12)
            everywhere = forms.field(form, "op", 10) == "user"
            await anyio.to_thread.run_sync(self._end, state, chosen, everywhere, request)
            return RedirectResponse(request.url.path, status_code=303)
        rows = await anyio.to_thread.run_sync(self._live, state)
        response: Response = await self.templates.TemplateResponse(
            request, "callnow_sessions.html", {"rows": rows}
        )
        return response

    @staticmethod
    def _live(state: AppState) -> list[dict[str, Any]]:
        with state.sessions() as session:
            return [
                {
                    "id": row.id,
                    "email": row.user.email,
                    "where": row.realm,
                    "device": device_label(row.user_agent),
                    "network": row.network,
                    "last_seen": row.last_seen_at.strftime("%Y-%m-%d %H:%M UTC"),
                }
                for row in web_sessions.all_live(
                    session, utcnow(), sign_in.lifetimes(state.settings)
                )
            ]

    @staticmethod
    def _end(state: AppState, chosen: str, everywhere: bool, request: Request) -> None:
        if not chosen.isdigit():
            return
        with state.sessions() as session, session.begin():
            row = web_sessions.by_id(session, int(chosen))
            if row is None:
                return
            now = utcnow()
            if everywhere:
                web_sessions.revoke_all(session, row.user_id, now)
            else:
                web_sessions.revoke(session, row, now)
            seat = request.scope["callnow.admin"].seat
            audit.record(
                session,
                actor=session.get(User, seat.user_id) if seat else None,
                action="sessions.revoke_all" if everywhere else "session.revoke",
                subject=row.user.email,
                tenant_id=row.user.tenant_id,
                via="admin",
            )


class CallNowAdmin(Admin):
    """sqladmin with a dashboard for its index: today's requests, calls, failures and spend."""

    @login_required
    async def index(self, request: Request) -> Response:
        state: AppState = self.admin.state.callnow
        figures = await anyio.to_thread.run_sync(_today, state)
        response: Response = await self.templates.TemplateResponse(
            request, "sqladmin/index.html", figures
        )
        return response


def _today(state: AppState) -> dict[str, Any]:
    """The dashboard's figures for the current UTC day."""
    now = utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    policy = policy_from(state.settings.billing)
    with state.sessions() as session:
        day = dashboard.day_summary(session, start, start + timedelta(days=1))
        latest = [
            {
                "id": row.id,
                "when": when(row.created_at),
                "page": str(row.profile),
                "number": row.number_e164,
                "state": row.state,
            }
            for row in dashboard.latest_requests(session)
        ]
    spend = [
        f"{format_minor(minor, policy.minor_unit_exponent)} {currency}"
        for currency, minor in day.spend_minor.items()
    ] or [f"{format_minor(0, policy.minor_unit_exponent)} {policy.currency_code}"]
    return {
        "day": start.strftime("%A %-d %B %Y"),
        "figures": [
            ("Requests", str(day.requests), "call-request"),
            ("Calls", str(day.calls), "call-leg"),
            ("Failures", str(day.failures), "call-request"),
            ("Spend", ", ".join(spend), "charge-row"),
        ],
        "latest": latest,
    }


def mount(app: FastAPI, engine: Engine, state: AppState) -> Admin:
    auth = PlatformAdminAuth(state)
    gate = Middleware(AdminGate, state=state)
    admin = CallNowAdmin(
        app,
        engine=engine,
        base_url="/admin",
        title="CallNow admin",
        authentication_backend=auth,
        templates_dir=str(TEMPLATES),
        middlewares=[gate],
    )
    auth.templates = admin.templates
    admin.templates.env.globals["csrf_token"] = csrf_token
    admin.admin.state.callnow = state
    # sqladmin's logout is a GET; this POST (CSRF-checked) is what ends the session.
    admin.admin.router.routes.append(
        Route("/logout", end_admin_session, methods=["POST"], name="logout_post")
    )
    for view in (TenantAdmin, UserAdmin, ExtensionAdmin, ProfileAdmin, *RECORD_VIEWS):
        admin.add_view(view)
    admin.add_base_view(SessionsAdmin)
    return admin
