"""How the admin shows things: human column labels and every value as plain text.

sqladmin would print `<callnow.store.models.RuleRow object at 0x…>` for a row without a
`__str__`, a check icon with no text for a boolean and `{}` for empty JSON; an operator reads
words, so every view takes its labels and formatters from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect

from callnow.store.billing_models import BudgetRow, ChargeRow, RateDeckRow
from callnow.store.models import (
    ApiKey,
    AuditEntry,
    AvailabilityWindow,
    Base,
    CallLeg,
    CallRequest,
    DoNotCall,
    RequestEvent,
    RuleRow,
    WebhookEndpoint,
)

# Words a plain split of the attribute name gets wrong.
WORDS = {
    "api": "API",
    "id": "ID",
    "sip": "SIP",
    "url": "URL",
    "callnow": "CallNow",
    "e164": "number",
    "ua": "UA",
}
# Whole labels better said another way.
LABELS = {
    "id": "ID",
    "callnow_id": "CallNow ID",
    "call_api_access": "Call API access",
    "number_e164": "Number",
    "number_typed": "Number as typed",
    "e164": "Number",
    "do_not_allow": "Blocked by the provider",
    "image_validation": "Image check (CAPTCHA)",
    "one_step_allowed": "One-step link allowed",
    "confirm_on_web": "Confirm on the web",
    "paused_until": "Paused until",
    "claimed_by": "Claimed by engine",
    "lease_expires_at": "Lease expires",
    "reserved_minor": "Budget reserved",
    "sip_code": "SIP code",
    "billable_seconds": "Billable seconds",
    "gross_minor": "Amount (incl. tax)",
    "net_minor": "Amount (excl. tax)",
    "tax_minor": "Tax",
    "daily_cap_minor": "Daily cap",
    "prepaid_balance_minor": "Prepaid balance",
    "credit_limit_minor": "Monthly credit limit",
    "duration_s": "Duration (s)",
    "billed_s": "Billed (s)",
    "request_id": "Request",
    "call_leg_id": "Call leg",
    "extension_id": "Extension",
    "tenant_id": "Tenant",
    "deck_id": "Rate deck",
    "owner_user_id": "Owner",
    "actor_user_id": "Actor",
    "role": "Role",
    "timezone": "Time zone",
    "is_active": "Active",
}
MINOR_UNITS = frozenset(
    {
        "gross_minor",
        "net_minor",
        "tax_minor",
        "daily_cap_minor",
        "prepaid_balance_minor",
        "credit_limit_minor",
        "reserved_minor",
    }
)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def human(name: str) -> str:
    """`call_api_access` -> "Call API access"; `started_at` -> "Started at"."""
    if name in LABELS:
        return LABELS[name]
    words = [WORDS.get(word, word) for word in name.split("_") if word]
    text = " ".join(words) or name
    return text[:1].upper() + text[1:]


def labels_for(model: type[Base]) -> dict[str, str]:
    """A label for every column and relationship of a model."""
    return {attr.key: human(attr.key) for attr in sa_inspect(model).attrs}


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def json_text(value: Any) -> str:
    """JSON as a line a person reads: `a: 1; b: x`; nothing at all when empty."""
    if not value:
        return ""
    if isinstance(value, Mapping):
        return "; ".join(
            f"{k}: {json_text(v) if isinstance(v, Mapping | list) else v}" for k, v in value.items()
        )
    if isinstance(value, list):
        return ", ".join(json.dumps(v) if isinstance(v, Mapping | list) else str(v) for v in value)
    return str(value)


def _rule(row: RuleRow) -> str:
    tests = []
    if row.number_match:
        tests.append(f"number {row.number_match} {row.number_value or ''}".strip())
    if row.name_match:
        tests.append(f"name {row.name_match} {row.name_value or ''}".strip())
    return f"{row.position}. {row.action} " + (" and ".join(tests) if tests else "every request")


# Rows whose model has no `__str__` of its own, as an operator would name them.
DESCRIBE: dict[type[Any], Callable[[Any], str]] = {
    RuleRow: _rule,
    AvailabilityWindow: lambda w: (
        f"{DAYS[w.weekday % 7]} {clock(w.start_minute)}–{clock(w.end_minute)}"
    ),
    CallRequest: lambda r: f"Request {r.id}: {r.number_e164} ({r.state})",
    RequestEvent: lambda e: f"{when(e.at)} {e.state}",
    CallLeg: lambda leg: f"{leg.role} leg of request {leg.request_id} to {leg.destination}",
    DoNotCall: lambda d: d.e164,
    AuditEntry: lambda a: f"{a.action} {a.subject}",
    ApiKey: lambda k: f"{k.key_id} {k.label}".strip(),
    WebhookEndpoint: lambda w: w.url,
    ChargeRow: lambda c: f"Charge {c.id} for {c.number}",
    BudgetRow: lambda b: (
        f"Budget of extension {b.extension_id}"
        if b.extension_id
        else f"Budget of tenant {b.tenant_id}"
    ),
    RateDeckRow: lambda d: d.name,
}


def model_text(value: Any) -> str:
    """Any stored row as words, never as Python's `<… object at 0x…>`."""
    describe = DESCRIBE.get(type(value))
    if describe is not None:
        return describe(value)
    if type(value).__str__ is not object.__str__:
        return str(value)
    return f"{human(type(value).__name__)} {getattr(value, 'id', '')}".strip()


def words(model: Any, attribute: Any) -> str:
    """A stored code (`calling_owner`, `platform_admin`) as words: "Calling owner"."""
    name = str(getattr(attribute, "key", attribute))
    value = getattr(model, name, None)
    return "" if value is None else human(str(value)).replace("requester", "visitor")


def yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def empty(value: None) -> str:
    return ""


# Passed as every view's `column_type_formatters`: by the value's type (and its parents').
TYPE_FORMATTERS: dict[type[Any], Callable[[Any], Any]] = {
    type(None): empty,
    bool: yes_no,
    datetime: when,
    dict: json_text,
    list: lambda items: (
        [model_text(i) if isinstance(i, Base) else i for i in items]
        if any(isinstance(i, Base) for i in items)
        else json_text(items)
    ),
    Base: model_text,
}
