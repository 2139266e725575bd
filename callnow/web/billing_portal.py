"""Owner portal pages for billing: each callback and what it cost, month totals, a chart of
calls and spend per day, the statement as CSV; and, for platform admins, spend per tenant and
the rate decks.

Pages are server-rendered and script-free: the chart is inline SVG with a table of the same
figures beside it (the portal's CSP forbids inline styles, so the SVG uses presentation
attributes only).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from callnow.billing import ledger
from callnow.billing.budgets import (
    CapTooHigh,
    budget_row,
    budget_status,
    month_period,
    parse_instant,
    provider_daily_cap,
    set_owner_daily_cap,
)
from callnow.billing.daily_chart import daily_chart
from callnow.billing.deck_csv import DeckImportFailed
from callnow.billing.money import format_minor, parse_minor
from callnow.billing.policy import policy_from
from callnow.billing.rate_card import rate_card
from callnow.billing.statements import (
    current_month,
    daily_totals,
    month_lines,
    owner_scope,
    parse_month,
    spend_per_tenant,
    statement_csv,
    totals,
)
from callnow.domain.rating import BillingPolicy
from callnow.i18n import DEFAULT_LANGUAGE, active_language
from callnow.i18n import gettext as _
from callnow.store import provisioning
from callnow.store.models import Extension, User, utcnow
from callnow.web import forms
from callnow.web.context import UnitOfWork, app_state
from callnow.web.owner_language import negotiated_language
from callnow.web.portal import (
    _csrf_purpose,
    _render,
    _to_login,
    _tokens,
    current_user,
    owner_view,
)

router = APIRouter(
    prefix="/portal/billing", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)
PLATFORM_ADMIN = "platform_admin"
MAX_DECK_UPLOAD_BYTES = 10_000_000  # the web server's body limit is usually the tighter one


def _policy(request: Request) -> BillingPolicy:
    return policy_from(app_state(request).settings.billing)


def _month_or_current(month: str | None, zone: ZoneInfo) -> tuple[date, str | None]:
    """The month asked for, or the current one with an error to show."""
    if month:
        try:
            return parse_month(month), None
        except ValueError as exc:
            return current_month(utcnow(), zone), str(exc)
    return current_month(utcnow(), zone), None


def _neighbours(first_day: date) -> tuple[str, str]:
    previous = (first_day - timedelta(days=1)).replace(day=1)
    following = (first_day + timedelta(days=32)).replace(day=1)
    return f"{previous:%Y-%m}", f"{following:%Y-%m}"


def _month_label(first_day: date) -> str:
    """ "November 2026" in English as before; the month as the language names it elsewhere."""
    language = active_language()
    if language == DEFAULT_LANGUAGE:
        return f"{first_day:%B %Y}"
    return format_skeleton("yMMMM", first_day, locale=language)


def _day_label(day: date) -> str:
    language = active_language()
    if language == DEFAULT_LANGUAGE:
        return f"{day:%a %d %b}"
    return format_skeleton("MMMEd", day, locale=language)


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


@router.get("", response_class=HTMLResponse)
def billing_home(
    request: Request, session: UnitOfWork, month: str | None = None, saved: int = 0
) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _billing_page(request, session, user, month, cap_saved=bool(saved))


def _money_card(session: Session, extension_id: int, policy: BillingPolicy) -> dict[str, Any]:
    """One extension's rate card and budget, for the Charges page."""
    extension = session.get(Extension, extension_id)
    assert extension is not None  # the owner's scope lists existing extensions only
    now = utcnow()
    row = budget_row(session, extension_id=extension_id)
    return {
        "extension": extension,
        "card": rate_card(session, extension, now, policy),
        "limits": budget_status(session, extension_id, now),
        "provider_cap": provider_daily_cap(session, extension_id),
        "own_cap": row.owner_daily_cap_minor if row is not None else None,
    }


def _billing_page(
    request: Request,
    session: Session,
    user: User,
    month: str | None,
    *,
    cap_saved: bool = False,
    cap_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    policy = _policy(request)
    scope = owner_scope(session, user.id, app_state(request).settings.default_timezone)
    # Months, days and times on the owner's clock, the same one every portal page shows.
    zone = owner_view(request, session, user).zone
    first_day, month_error = _month_or_current(month, zone)
    lines = month_lines(
        session, first_day, zone, extension_ids=scope.extension_ids, newest_first=True
    )
    days = daily_totals(lines, first_day)
    previous, following = _neighbours(first_day)
    return _render(
        request,
        "billing.html",
        user,
        month=f"{first_day:%Y-%m}",
        month_label=_month_label(first_day),
        month_error=month_error,
        previous=previous,
        following=following,
        lines=lines,
        totals=totals(lines),
        days=days,
        chart=daily_chart(days, policy.currency_code, policy.minor_unit_exponent),
        zone=str(zone),
        currency=policy.currency_code,
        money=lambda minor: format_minor(minor, policy.minor_unit_exponent),
        duration=_duration,
        day_label=_day_label,
        money_cards=[_money_card(session, e, policy) for e in scope.extension_ids],
        tax_name=_("GST") if policy.currency_code in ("AUD", "NZD") else _("tax"),
        cap_saved=cap_saved,
        cap_error=cap_error,
        status_code=422 if month_error and status_code == 200 else status_code,
    )


@router.post("/daily-cap", response_class=HTMLResponse)
def set_own_daily_cap(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    """The owner's own daily cap on one of their extensions; blank removes it."""
    user = current_user(request, session)
    if user is None:
        return _to_login()
    scope = owner_scope(session, user.id, app_state(request).settings.default_timezone)

    def refused(message: str, status_code: int = 422) -> HTMLResponse:
        return _billing_page(
            request, session, user, None, cap_error=message, status_code=status_code
        )

    if not _tokens(request).valid(forms.field(posted, "csrf", 300), _csrf_purpose(request)):
        return refused(_("The form expired; please try again."), 400)
    extension_field = forms.field(posted, "extension_id", 12)
    if not extension_field.isdigit() or int(extension_field) not in scope.extension_ids:
        return refused(_("Choose one of your extensions."))
    exponent = _policy(request).minor_unit_exponent
    text = forms.field(posted, "daily_cap", 21).strip()
    if len(text) > 20:
        return refused(_("A daily cap is at most 20 characters, like 25.00."))
    try:
        cap = parse_minor(text, exponent) if text else None
        set_owner_daily_cap(session, int(extension_field), cap)
    except CapTooHigh as high:
        provider = format_minor(int(high.args[0]), exponent)
        return refused(
            _("Your own cap can only be lower than your provider's, %(cap)s a day.")
            % {"cap": provider}
        )
    except ValueError as exc:
        return refused(_("The daily cap is an amount like 25.00 (%(error)s).") % {"error": exc})
    return RedirectResponse("/portal/billing?saved=1", status_code=303)


@router.get("/statement.csv")
def statement_download(request: Request, month: str, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    scope = owner_scope(session, user.id, app_state(request).settings.default_timezone)
    try:
        first_day = parse_month(month)
    except ValueError as exc:
        return Response(str(exc), status_code=422, media_type="text/plain")
    lines = month_lines(session, first_day, scope.zone, extension_ids=scope.extension_ids)
    return Response(
        statement_csv(lines, _policy(request).minor_unit_exponent),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="callnow-{first_day:%Y-%m}.csv"'},
    )


# ---------------------------------------------------------------------------- platform admin


def _platform_admin(request: Request, session: Session) -> User | Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    if user.role != PLATFORM_ADMIN:
        # As elsewhere in the portal, what you may not see looks like nothing at all.
        return _render(request, "missing.html", user, status_code=404)
    return user


def _platform_page(
    request: Request,
    session: Session,
    user: User,
    month: str | None,
    *,
    import_errors: list[str] | None = None,
    imported: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    policy = _policy(request)
    zone = ZoneInfo(app_state(request).settings.default_timezone)
    first_day, month_error = _month_or_current(month, zone)
    spends = spend_per_tenant(session, month_period(first_day, zone))
    previous, following = _neighbours(first_day)
    return _render(
        request,
        "billing_platform.html",
        user,
        month=f"{first_day:%Y-%m}",
        month_label=_month_label(first_day),
        month_error=month_error,
        previous=previous,
        following=following,
        spends=spends,
        total_minor=sum(spend.gross_minor for spend in spends),
        total_calls=sum(spend.calls for spend in spends),
        decks=ledger.list_decks(session),
        # The deck's CSV columns, shown as the paste box's example (names, not words).
        deck_columns="prefix,description,connection_fee,price_per_minute,initial_increment,"
        "subsequent_increment,minimum_charge",
        tenants=provisioning.tenants(session),
        zone=str(zone),
        currency=policy.currency_code,
        money=lambda minor: format_minor(minor, policy.minor_unit_exponent),
        import_errors=import_errors or [],
        imported=imported,
        status_code=422 if month_error and status_code == 200 else status_code,
    )


@router.get("/platform", response_class=HTMLResponse)
def platform_home(
    request: Request,
    session: UnitOfWork,
    month: str | None = None,
    imported: int | None = None,
) -> Response:
    user = _platform_admin(request, session)
    if isinstance(user, Response):
        return user
    shown = str(imported) if imported is not None else None
    return _platform_page(request, session, user, month, imported=shown)


class DeckUpload(NamedTuple):
    form: FormData
    file: bytes | None


async def _deck_upload(request: Request) -> DeckUpload:
    """The form and the uploaded file's bytes, read on the event loop (the route is a `def`)."""
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        return DeckUpload(form, await upload.read(MAX_DECK_UPLOAD_BYTES + 1))
    return DeckUpload(form, None)


@router.post("/platform/decks", response_class=HTMLResponse)
def import_deck_form(
    request: Request,
    session: UnitOfWork,
    posted: Annotated[DeckUpload, Depends(_deck_upload)],
) -> Response:
    user = _platform_admin(request, session)
    if isinstance(user, Response):
        return user
    form, uploaded = posted
    if not _tokens(request).valid(forms.field(form, "csrf", 300), _csrf_purpose(request)):
        return _platform_page(
            request, session, user, None, import_errors=[_("The form expired.")], status_code=400
        )
    data: bytes | str = uploaded or forms.field(form, "csv_text", MAX_DECK_UPLOAD_BYTES)
    errors, tenant_id = [], None
    tenant_field = forms.field(form, "tenant_id", 12)
    if tenant_field:
        tenant = None
        if tenant_field.isdigit():
            tenant = provisioning.tenant_by_id(session, int(tenant_field))
        if tenant is None:
            errors.append(_("Choose the platform or an existing tenant."))
        else:
            tenant_id = tenant.id
    zone_name = app_state(request).settings.default_timezone
    chosen = provisioning.tenant_by_id(session, tenant_id) if tenant_id is not None else None
    if chosen is not None:
        zone_name = chosen.timezone
    try:
        effective_from = parse_instant(forms.field(form, "effective_from", 40), ZoneInfo(zone_name))
    except ValueError:
        errors.append(_("The effective date looks like 2026-12-01."))
    if not data:
        errors.append(_("Choose a CSV file or paste the deck."))
    if errors:
        return _platform_page(request, session, user, None, import_errors=errors, status_code=422)
    result = ledger.import_deck(
        session, data, tenant_id, forms.field(form, "name", 200), effective_from
    )
    if isinstance(result, DeckImportFailed):
        messages = [str(error) for error in result.errors]
        if result.truncated:
            messages.append("… and more errors.")
        return _platform_page(request, session, user, None, import_errors=messages, status_code=422)
    return RedirectResponse(f"/portal/billing/platform?imported={result.id}", status_code=303)


@router.get("/platform/decks/{deck_id}.csv")
def export_deck(request: Request, deck_id: int, session: UnitOfWork) -> Response:
    user = _platform_admin(request, session)
    if isinstance(user, Response):
        return user
    text = ledger.export_deck(session, deck_id)
    if text is None:
        return _render(request, "missing.html", user, status_code=404)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="deck-{deck_id}.csv"'},
    )
