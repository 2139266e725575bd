"""`callnow billing …`: rate decks, re-rating, statements and budgets from the command line.

Settings and the database come the same way as for every other command (`--config`,
`CALLNOW_*`); like every admin command, these need the schema `callnow db upgrade` brings.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.orm import Session

from callnow.billing import ledger
from callnow.billing.budgets import UNCHANGED, LimitChange, local_days, parse_instant
from callnow.billing.deck_csv import DeckImportFailed
from callnow.billing.money import format_minor, parse_minor
from callnow.billing.rerate import RerateReport, rerate
from callnow.billing.statements import month_lines, parse_month, statement_csv
from callnow.cli.common import CommandError, ConfigOption, admin_session, load_settings
from callnow.domain.rating import BillingPolicy
from callnow.store import provisioning
from callnow.store.models import Tenant, utcnow

billing_app = typer.Typer(
    help="Rate decks, re-rating, statements and budgets.", no_args_is_help=True
)

OFF = "off"


def _tenant(session: Session, name: str | None) -> Tenant | None:
    if name is None:
        return None
    tenant = provisioning.tenant_by_name(session, name)
    if tenant is None:
        raise CommandError(f"No tenant named '{name}'.")
    return tenant


def _instant(text: str, zone: ZoneInfo) -> datetime:
    try:
        return parse_instant(text, zone)
    except ValueError as exc:
        raise CommandError(f"'{text}' is not a date like 2026-12-01") from exc


def _limit(text: str | None, exponent: int) -> LimitChange:
    if text is None:
        return UNCHANGED
    if text.strip().lower() == OFF:
        return None
    try:
        return parse_minor(text, exponent)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


@billing_app.command("import-deck")
def import_deck(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV rate deck")],
    name: Annotated[str, typer.Option(help="A name people recognise, e.g. 'Carrier X 2026-12'")],
    effective_from: Annotated[
        str, typer.Option(help="Date (midnight local) or ISO date-time the deck takes effect")
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant name; omit for the platform")] = None,
    config: ConfigOption = None,
) -> None:
    """Import a CSV rate deck whole; on any error nothing is imported and the old deck stays."""
    settings = load_settings(config)
    data = file.read_bytes()
    with admin_session(settings) as session:
        owner = _tenant(session, tenant)
        zone = ZoneInfo(owner.timezone if owner else settings.default_timezone)
        result = ledger.import_deck(
            session, data, owner.id if owner else None, name, _instant(effective_from, zone)
        )
        if isinstance(result, DeckImportFailed):
            for error in result.errors:
                typer.secho(f"{file.name}: {error}", fg="red", err=True)
            more = " (and more)" if result.truncated else ""
            raise CommandError(f"Nothing imported: {len(result.errors)} errors{more}.")
        typer.echo(
            f"Deck {result.id} '{result.name}' imported for "
            f"{owner.name if owner else 'the platform'}, in force from "
            f"{result.effective_from.astimezone(zone).isoformat()}."
        )


@billing_app.command("list-decks")
def list_decks(config: ConfigOption = None) -> None:
    """Every deck: id, owner, effective date, currency and number of rates."""
    with admin_session(load_settings(config)) as session:
        for deck in ledger.list_decks(session):
            owner = deck.tenant_name or "platform"
            typer.echo(
                f"{deck.id}\t{owner}\t{deck.effective_from.isoformat()}\t{deck.currency}\t"
                f"{deck.entries} rates\t{deck.name}"
            )


@billing_app.command("export-deck")
def export_deck(
    deck_id: Annotated[int, typer.Argument(help="Deck id, from list-decks")],
    config: ConfigOption = None,
) -> None:
    """Write a deck as CSV to standard output, in the form import-deck reads."""
    with admin_session(load_settings(config)) as session:
        text = ledger.export_deck(session, deck_id)
        if text is None:
            raise CommandError(f"No deck {deck_id}.")
        typer.echo(text, nl=False)


@billing_app.command("rerate")
def rerate_period(
    from_date: Annotated[str, typer.Option("--from", help="First day, e.g. 2026-11-01")],
    to_date: Annotated[str, typer.Option("--to", help="Last day, included")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report; change no charge")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Re-rate the period's answered calls with the decks as they are now; report differences.

    Days are the platform's time zone (default_timezone). Without --dry-run, posted charges are
    corrected to the new prices and missing charges are posted.
    """
    settings = load_settings(config)
    zone = ZoneInfo(settings.default_timezone)
    try:
        first, last = date.fromisoformat(from_date), date.fromisoformat(to_date)
    except ValueError as exc:
        raise typer.BadParameter("dates look like 2026-11-01") from exc
    if last < first:
        raise typer.BadParameter("--to is before --from")
    period = local_days(first, (last - first).days + 1, zone)
    with admin_session(settings) as session:
        report = rerate(session, period, apply=not dry_run)
        _print_rerate(report, zone, BillingPolicy().minor_unit_exponent)


def _print_rerate(report: RerateReport, zone: ZoneInfo, exponent: int) -> None:
    def money(amount: int | None) -> str:
        return "-" if amount is None else format_minor(amount, exponent)

    for diff in report.differences:
        typer.echo(
            f"leg {diff.call_leg_id}\t{diff.answered_at.astimezone(zone):%Y-%m-%d %H:%M}\t"
            f"{diff.number}\t{money(diff.old_gross_minor)} -> {money(diff.new_gross_minor)}\t"
            f"{diff.old_deck or '-'} -> {diff.new_deck or '-'}\t{diff.note}"
        )
    outcome = "corrected" if report.applied else "not changed (dry run)"
    typer.echo(
        f"Checked {report.checked} answered calls: {len(report.differences)} differences, "
        f"{outcome if report.differences else 'nothing to change'}."
    )


@billing_app.command("statement")
def statement(
    extension: Annotated[str, typer.Option(help="Internal number, e.g. 001002")],
    month: Annotated[str, typer.Option(help="Month like 2026-11, in the tenant's time zone")],
    config: ConfigOption = None,
) -> None:
    """An extension's charges of one month as CSV on standard output."""
    try:
        first_day = parse_month(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with admin_session(load_settings(config)) as session:
        found = provisioning.extension_by_internal(session, extension)
        if found is None:
            raise CommandError(f"No extension {extension}.")
        zone = ZoneInfo(found.tenant.timezone)
        lines = month_lines(session, first_day, zone, extension_ids=[found.id])
        typer.echo(statement_csv(lines, BillingPolicy().minor_unit_exponent), nl=False)


@billing_app.command("set-budget")
def set_budget(
    extension: Annotated[str | None, typer.Option(help="Internal number")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name")] = None,
    daily_cap: Annotated[
        str | None, typer.Option(help="Most spent per day incl. tax, e.g. 20.00; 'off'")
    ] = None,
    prepaid: Annotated[
        str | None, typer.Option(help="Prepaid balance left as of now, e.g. 50.00; 'off'")
    ] = None,
    credit_limit: Annotated[
        str | None, typer.Option(help="Most spent per calendar month incl. tax; 'off'")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Set the spending limits of one extension or one tenant (amounts include tax)."""
    if (extension is None) == (tenant is None):
        raise typer.BadParameter("give exactly one of --extension and --tenant")
    exponent = BillingPolicy().minor_unit_exponent
    with admin_session(load_settings(config)) as session:
        changes = {
            "daily_cap_minor": _limit(daily_cap, exponent),
            "prepaid_balance_minor": _limit(prepaid, exponent),
            "credit_limit_minor": _limit(credit_limit, exponent),
        }
        now = utcnow()
        if extension is not None:
            found = provisioning.extension_by_internal(session, extension)
            if found is None:
                raise CommandError(f"No extension {extension}.")
            # `changes` holds only the budget's `int | None` limits.
            row = ledger.set_budget(session, now, extension_id=found.id, **changes)  # type: ignore[arg-type]
            subject = f"Extension {found.internal_number}"
        else:
            owner = _tenant(session, tenant)
            assert owner is not None
            row = ledger.set_budget(session, now, tenant_id=owner.id, **changes)  # type: ignore[arg-type]  # as above
            subject = f"Tenant '{owner.name}'"

        def shown(amount: int | None) -> str:
            return OFF if amount is None else format_minor(amount, exponent)

        typer.echo(
            f"{subject}: daily cap {shown(row.daily_cap_minor)}, "
            f"prepaid {shown(row.prepaid_balance_minor)}, "
            f"credit limit {shown(row.credit_limit_minor)}."
        )
