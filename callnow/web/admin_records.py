"""The admin's records: requests (with their history and legs), calls, charges, the audit log,
the do-not-call list (add) and budgets (change limits).

Requests, legs, charges and audit entries are written only by the engine, billing and the
audit log's own callers, under invariants a form could break (a leg written before its INVITE,
one charge per leg, an append-only log), so these views are read-only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio.to_thread
from markupsafe import Markup
from sqladmin import ModelView
from sqladmin.authentication import get_current_user_id
from starlette.requests import Request
from wtforms import Field
from wtforms.widgets import TextInput

from callnow.billing.money import format_minor, parse_minor
from callnow.billing.policy import policy_from
from callnow.domain.phone import InvalidNumber, parse_visitor_number
from callnow.store import audit, dashboard, do_not_call
from callnow.store.billing_models import BudgetRow, ChargeRow
from callnow.store.models import AuditEntry, CallLeg, CallRequest, DoNotCall, User, utcnow
from callnow.web.admin_text import (
    MINOR_UNITS,
    TYPE_FORMATTERS,
    human,
    json_text,
    labels_for,
    model_text,
    when,
    words,
)
from callnow.web.context import AppState


class CallNowView(ModelView):
    """Labels and value formatting every admin view shares."""

    column_type_formatters: ClassVar[Any] = TYPE_FORMATTERS
    column_type_formatters_detail: ClassVar[Any] = TYPE_FORMATTERS
    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100]

    def __init__(self) -> None:
        # Ours first, then whatever the view says itself (sqladmin reads them in __init__).
        own = {self._get_prop_name(k): v for k, v in type(self).column_labels.items()}
        setattr(self, "column_labels", {**labels_for(self.model), **own})  # noqa: B010
        super().__init__()


async def audited(
    view: ModelView, request: Request, model: Any, action: str, data: dict[str, Any]
) -> None:
    """An admin's change in the audit log, under the admin's name."""
    actor_id = get_current_user_id(request)

    def write() -> None:
        with view.session_maker() as session, session.begin():
            audit.record(
                session,
                actor=session.get(User, actor_id) if isinstance(actor_id, int) else None,
                action=action,
                subject=model_text(model)[:80],
                details={k: str(v) for k, v in data.items()},
                via="admin",
            )

    await anyio.to_thread.run_sync(write)


class ReadOnlyView(CallNowView):
    can_create = False
    can_edit = False
    can_delete = False
    can_export = False


def money(model: Any, attribute: Any, request: Request) -> str:
    """Minor units as the billing policy writes them, with the currency."""
    amount = getattr(model, str(attribute.key if hasattr(attribute, "key") else attribute))
    if amount is None:
        return ""
    policy = policy_from(request.app.state.callnow.settings.billing)
    currency = getattr(model, "currency", None) or policy.currency_code
    return f"{format_minor(int(amount), policy.minor_unit_exponent)} {currency}"


def link(identity: str, label: str) -> Any:
    def render(model: Any, attribute: Any) -> Markup | str:
        key = getattr(model, str(attribute.key if hasattr(attribute, "key") else attribute))
        if key is None:
            return ""
        return Markup('<a href="/admin/{}/details/{}">{} {}</a>').format(identity, key, label, key)

    return render


class RequestAdmin(ReadOnlyView, model=CallRequest):
    """Every callback request, searchable; its page shows its history and its legs."""

    name = "Request"
    name_plural = "Requests"
    icon = "fa-solid fa-phone-volume"
    column_list = [
        CallRequest.id,
        CallRequest.created_at,
        CallRequest.profile,
        CallRequest.caller_name,
        CallRequest.number_e164,
        CallRequest.channel,
        CallRequest.state,
        CallRequest.decision,
        CallRequest.reason,
    ]
    column_details_exclude_list = [
        CallRequest.number_on_do_not_call,
        CallRequest.events,
        CallRequest.token,
    ]
    column_searchable_list = [
        "profile.callnow_id",
        CallRequest.number_e164,
        CallRequest.caller_name,
        CallRequest.state,
        CallRequest.reason,
    ]
    column_labels: ClassVar[Any] = {"profile.callnow_id": "CallNow ID"}
    column_sortable_list = [CallRequest.id, CallRequest.created_at, CallRequest.state]
    column_default_sort = [(CallRequest.id, True)]
    column_formatters: ClassVar[Any] = {
        CallRequest.state: words,
        CallRequest.decision: words,
        CallRequest.channel: words,
    }
    column_formatters_detail: ClassVar[Any] = {
        **column_formatters,
        CallRequest.reserved_minor: money,
    }

    async def details_context(self, request: Request) -> dict[str, Any]:
        state: AppState = request.app.state.callnow
        pk = request.path_params.get("pk", "")
        if not str(pk).isdigit():
            return {}

        def load() -> dict[str, Any]:
            with state.sessions() as session:
                events, legs = dashboard.request_history(session, int(pk))
                return {
                    "events": [
                        {
                            "at": when(e.at),
                            "state": human(e.state).replace("requester", "visitor"),
                            "reason": e.reason,
                            "details": json_text(e.details),
                        }
                        for e in events
                    ],
                    "legs": [_leg_row(leg) for leg in legs],
                }

        return await anyio.to_thread.run_sync(load)


def _leg_row(leg: CallLeg) -> dict[str, str]:
    return {
        "id": str(leg.id),
        "role": human(leg.role).replace("Requester", "Visitor"),
        "destination": leg.destination,
        "started": when(leg.started_at),
        "answered": when(leg.answered_at) if leg.answered_at else "",
        "ended": when(leg.ended_at) if leg.ended_at else "",
        "outcome": " ".join(filter(None, [human(leg.disposition or ""), str(leg.sip_code or "")])),
        "seconds": str(leg.billable_seconds),
    }


class CallAdmin(ReadOnlyView, model=CallLeg):
    """The legs CallNow dialled: the owner's extension, then the visitor."""

    name = "Call"
    name_plural = "Calls"
    icon = "fa-solid fa-phone"
    column_list = [
        CallLeg.id,
        CallLeg.request_id,
        CallLeg.role,
        CallLeg.destination,
        CallLeg.started_at,
        CallLeg.answered_at,
        CallLeg.ended_at,
        CallLeg.disposition,
        CallLeg.billable_seconds,
    ]
    # The prepared hangup is the engine's recovery material, not an operator's reading.
    column_details_exclude_list = [CallLeg.hangup_message]
    column_searchable_list = [CallLeg.destination, CallLeg.disposition]
    column_sortable_list = [CallLeg.id, CallLeg.started_at]
    column_default_sort = [(CallLeg.id, True)]
    column_labels: ClassVar[Any] = {CallLeg.role: "Leg"}
    column_formatters: ClassVar[Any] = {
        CallLeg.request_id: link("call-request", "Request"),
        CallLeg.role: words,
        CallLeg.disposition: words,
    }
    column_formatters_detail: ClassVar[Any] = column_formatters


class ChargeAdmin(ReadOnlyView, model=ChargeRow):
    name = "Charge"
    name_plural = "Charges"
    icon = "fa-solid fa-receipt"
    column_list = [
        ChargeRow.id,
        ChargeRow.answered_at,
        ChargeRow.request_id,
        ChargeRow.number,
        ChargeRow.destination_class,
        ChargeRow.billed_s,
        ChargeRow.gross_minor,
    ]
    column_searchable_list = [ChargeRow.number, ChargeRow.destination_class]
    column_sortable_list = [ChargeRow.id, ChargeRow.answered_at, ChargeRow.gross_minor]
    column_default_sort = [(ChargeRow.id, True)]
    column_formatters: ClassVar[Any] = {
        **{getattr(ChargeRow, name): money for name in MINOR_UNITS if hasattr(ChargeRow, name)},
        ChargeRow.request_id: link("call-request", "Request"),
        ChargeRow.destination_class: words,
        ChargeRow.call_leg_id: link("call-leg", "Call"),
        ChargeRow.extension_id: link("extension", "Extension"),
        ChargeRow.tenant_id: link("tenant", "Tenant"),
    }
    column_formatters_detail: ClassVar[Any] = column_formatters


class AuditAdmin(ReadOnlyView, model=AuditEntry):
    name = "Audit entry"
    name_plural = "Audit log"
    icon = "fa-solid fa-clipboard-list"
    column_list = [
        AuditEntry.id,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.subject,
        AuditEntry.details,
    ]
    column_searchable_list = [AuditEntry.actor, AuditEntry.action, AuditEntry.subject]
    column_sortable_list = [AuditEntry.id, AuditEntry.at]
    column_default_sort = [(AuditEntry.id, True)]
    column_labels: ClassVar[Any] = {AuditEntry.at: "When", AuditEntry.details: "What was set"}
    column_formatters: ClassVar[Any] = {
        AuditEntry.tenant_id: link("tenant", "Tenant"),
        AuditEntry.actor_user_id: link("user", "User"),
    }
    column_formatters_detail: ClassVar[Any] = column_formatters


class DoNotCallAdmin(CallNowView, model=DoNotCall):
    """The platform's do-not-call list: add a number as `callnow admin do-not-call add` does."""

    name = "Do-not-call number"
    name_plural = "Do-not-call list"
    icon = "fa-solid fa-ban"
    column_list = [DoNotCall.e164, DoNotCall.reason, DoNotCall.added_at]
    column_searchable_list = [DoNotCall.e164, DoNotCall.reason]
    column_sortable_list = [DoNotCall.e164, DoNotCall.added_at]
    form_columns = [DoNotCall.e164, DoNotCall.reason]
    column_labels: ClassVar[Any] = {DoNotCall.e164: "Number"}
    form_args: ClassVar[Any] = {
        "e164": {"description": "National (0412 345 678) or international (+44 20 …) form."}
    }
    can_edit = False
    can_delete = False  # `callnow admin do-not-call remove`: taking a number off is deliberate
    can_export = False

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        region = request.app.state.callnow.settings.default_region
        typed = str(data.get("e164") or "").strip()
        if not 1 <= len(typed) <= 40:
            raise ValueError("Give the number, at most 40 characters.")
        try:
            data["e164"] = parse_visitor_number(typed, region).e164
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from exc
        data["reason"] = str(data.get("reason") or "").strip()[:200]

        def listed() -> bool:
            with self.session_maker() as session:
                return do_not_call.is_listed(session, data["e164"])

        if await anyio.to_thread.run_sync(listed):
            raise ValueError(f"{data['e164']} is on the list already.")


class MoneyField(Field):
    """An amount typed as "12.50" (blank: no limit), kept in minor units, as the CLI takes it."""

    widget = TextInput()

    def __init__(self, *args: Any, exponent: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exponent = exponent

    def _value(self) -> str:
        return "" if self.data is None else format_minor(int(self.data), self.exponent)

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = str(valuelist[0]).strip() if valuelist else ""
        if len(text) > 20:
            raise ValueError("An amount is at most 20 characters, e.g. 20.00.")
        self.data = None if text.lower() in ("", "off") else parse_minor(text, self.exponent)


class BudgetAdmin(ReadOnlyView, model=BudgetRow):
    """Budgets set here or by `callnow billing set-budget`: the same limits, the same rules
    (a prepaid balance is what is left as of the moment it is set)."""

    name = "Budget"
    name_plural = "Budgets"
    icon = "fa-solid fa-wallet"
    column_list = [
        BudgetRow.id,
        BudgetRow.tenant_id,
        BudgetRow.extension_id,
        BudgetRow.daily_cap_minor,
        BudgetRow.prepaid_balance_minor,
        BudgetRow.credit_limit_minor,
        BudgetRow.updated_at,
    ]
    column_formatters: ClassVar[Any] = {
        BudgetRow.daily_cap_minor: money,
        BudgetRow.prepaid_balance_minor: money,
        BudgetRow.credit_limit_minor: money,
        BudgetRow.tenant_id: link("tenant", "Tenant"),
        BudgetRow.extension_id: link("extension", "Extension"),
    }
    column_formatters_detail: ClassVar[Any] = column_formatters
    can_edit = True
    form_columns: ClassVar[Any] = [
        BudgetRow.daily_cap_minor,
        BudgetRow.prepaid_balance_minor,
        BudgetRow.credit_limit_minor,
    ]
    form_overrides: ClassVar[Any] = dict.fromkeys(
        ("daily_cap_minor", "prepaid_balance_minor", "credit_limit_minor"), MoneyField
    )
    form_args: ClassVar[Any] = {
        "daily_cap_minor": {"description": "Most spent per day, tax included; blank: no cap."},
        "prepaid_balance_minor": {"description": "Left as of now; blank: not prepaid."},
        "credit_limit_minor": {"description": "Most spent per calendar month; blank: none."},
    }

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        # A balance typed now is what is left now: earlier charges stop counting against it.
        if data.get("prepaid_balance_minor") != model.prepaid_balance_minor:
            balance = data.get("prepaid_balance_minor")
            data["balance_set_at"] = None if balance is None else utcnow()

    async def after_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        await audited(self, request, model, "budget.update", data)


RECORD_VIEWS = (RequestAdmin, CallAdmin, ChargeAdmin, AuditAdmin, DoNotCallAdmin, BudgetAdmin)
