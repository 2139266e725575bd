"""`callnow admin …`: provision tenants, users, extensions, pages and the do-not-call list."""

from __future__ import annotations

from typing import Annotated

import typer

from callnow.cli.common import CommandError, ConfigOption, admin_session, load_settings
from callnow.store import provisioning

admin_app = typer.Typer(
    help="Provision tenants, users, extensions and CallNow pages.", no_args_is_help=True
)
do_not_call_app = typer.Typer(
    help="Keep numbers that must never be called by any CallNow page.", no_args_is_help=True
)
admin_app.add_typer(do_not_call_app, name="do-not-call")

NumberArgument = Annotated[str, typer.Argument(help="The number, e.g. '0412 345 678'.")]


@admin_app.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Argument(help="The tenant's name, unique.")],
    region: Annotated[str, typer.Option(help="Country of national numbers, e.g. AU.")] = "AU",
    timezone: Annotated[
        str, typer.Option(help="IANA time zone of its statements and hours.")
    ] = "Australia/Sydney",
    product_line: Annotated[str, typer.Option(help="pbx or home.")] = "pbx",
    call_api: Annotated[bool, typer.Option(help="Call API access (needed for CallNow).")] = True,
    config: ConfigOption = None,
) -> None:
    """Create a tenant: a customer whose extensions may get CallNow pages."""
    with admin_session(load_settings(config)) as session:
        tenant = provisioning.create_tenant(
            session,
            name,
            product_line=product_line,
            region=region,
            timezone=timezone,
            call_api_access=call_api,
        )
        typer.echo(f"Tenant {tenant.id} '{tenant.name}' created.")


@admin_app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The user's email, used to log in.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="CALLNOW_PASSWORD",
            help="Asked for when not given (or taken from CALLNOW_PASSWORD).",
        ),
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant name.")] = None,
    role: Annotated[str, typer.Option(help="platform_admin, tenant_admin or owner.")] = "owner",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    language: Annotated[
        str, typer.Option(help="Their language: portal, e-mails, phone prompts (en, de, fr, …).")
    ] = "en",
    config: ConfigOption = None,
) -> None:
    """Create a user who logs in to the portal (owner) or the admin pages."""
    with admin_session(load_settings(config)) as session:
        found = provisioning.tenant_by_name(session, tenant) if tenant else None
        if tenant and found is None:
            raise CommandError(f"No tenant named '{tenant}'.")
        user = provisioning.create_user(
            session,
            email,
            password,
            role=role,
            tenant=found,
            display_name=name,
            language=language,
        )
        typer.echo(f"User {user.id} {user.email} ({user.role}) created.")


@admin_app.command("create-extension")
def create_extension(
    tenant: Annotated[str, typer.Option(help="Tenant name.")],
    internal: Annotated[str, typer.Option(help="Internal number, e.g. 001002.")],
    external: Annotated[str, typer.Option(help="External number, e.g. '02 9037 1234'.")],
    owner: Annotated[str | None, typer.Option(help="Owner's email.")] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a PBX extension of a tenant, optionally owned by a user."""
    from callnow.store import accounts

    with admin_session(load_settings(config)) as session:
        found = provisioning.tenant_by_name(session, tenant)
        if found is None:
            raise CommandError(f"No tenant named '{tenant}'.")
        user = accounts.by_email(session, owner) if owner else None
        if owner and user is None:
            raise CommandError(f"No user with the email {owner}.")
        extension = provisioning.create_extension(
            session,
            found,
            internal_number=internal,
            external_number=external,
            display_name=name,
            owner=user,
        )
        typer.echo(f"Extension {extension.internal_number} ({extension.external_number}) created.")


@admin_app.command("enable-callnow")
def enable_callnow(
    internal: Annotated[str, typer.Option(help="The extension's internal number.")],
    callnow_id: Annotated[str, typer.Option("--id", help="The CallNow ID, e.g. john_doe.")],
    rename: Annotated[
        bool,
        typer.Option(
            "--rename",
            help="Rename the extension's existing page; its old ID keeps redirecting "
            "and is held from other pages for a year.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Give an extension its public CallNow page (or, with --rename, a new ID for it)."""
    with admin_session(load_settings(config)) as session:
        extension = provisioning.extension_by_internal(session, internal)
        if extension is None:
            raise CommandError(f"No extension {internal}.")
        profile = provisioning.enable_callnow(session, extension, callnow_id, rename=rename)
        typer.echo(f"CallNow is on for {internal}: /callnow/{profile.callnow_id}")


def _e164(number: str, region: str) -> str:
    from callnow.domain.phone import InvalidNumber, parse_visitor_number

    try:
        return parse_visitor_number(number, region).e164
    except InvalidNumber as exc:
        raise CommandError(str(exc)) from exc


@do_not_call_app.command("add")
def do_not_call_add(
    number: NumberArgument,
    reason: Annotated[str, typer.Option(help="Why, for whoever reads the list later.")] = "",
    config: ConfigOption = None,
) -> None:
    """Put a number on the list: no page will call it."""
    from callnow.store import do_not_call

    settings = load_settings(config)
    with admin_session(settings) as session:
        e164 = _e164(number, settings.default_region)
        added = do_not_call.add(session, e164, reason)
        typer.echo(f"{e164} {'added to' if added else 'was already on'} the do-not-call list.")


@do_not_call_app.command("remove")
def do_not_call_remove(number: NumberArgument, config: ConfigOption = None) -> None:
    """Take a number off the list."""
    from callnow.store import do_not_call

    settings = load_settings(config)
    with admin_session(settings) as session:
        e164 = _e164(number, settings.default_region)
        removed = do_not_call.remove(session, e164)
        typer.echo(f"{e164} {'removed from' if removed else 'was not on'} the do-not-call list.")


@do_not_call_app.command("list")
def do_not_call_list(config: ConfigOption = None) -> None:
    """Print the list: number, date added and reason, tab-separated."""
    from callnow.store import do_not_call

    with admin_session(load_settings(config)) as session:
        for entry in do_not_call.listed(session):
            typer.echo(f"{entry.e164}\t{entry.added_at:%Y-%m-%d}\t{entry.reason}")


provider_token_app = typer.Typer(
    help="Tokens of the provider API (/api/provider/v1): scoped, revocable.",
    no_args_is_help=True,
)
admin_app.add_typer(provider_token_app, name="provider-token")


@provider_token_app.command("create")
def provider_token_create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="Repeat for each scope: tenants:read, tenants:write, pages:write,"
            " budgets:write, do_not_call:read, do_not_call:write.",
        ),
    ],
    label: Annotated[str, typer.Option(help="What the token is for, e.g. 'billing sync'.")] = "",
    tenant: Annotated[
        str | None, typer.Option(help="Bind the token to this tenant (by name); else all.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a token and print its secret once: only its hash is kept."""
    from callnow.services import provisioning as service

    with admin_session(load_settings(config)) as session:
        try:
            issued = service.issue_token(session, label=label, scopes=scope, tenant_name=tenant)
        except service.Refused as refused:
            raise CommandError(str(refused)) from refused
        token = issued.token
        typer.echo(f"Provider token {token.token_id} ({', '.join(token.scopes)}) created.")
        typer.echo("Its secret, shown only now:")
        typer.echo(issued.secret)


@provider_token_app.command("revoke")
def provider_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id, as `list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token: every later call with it answers 401."""
    from callnow.services import provisioning as service

    with admin_session(load_settings(config)) as session:
        try:
            token = service.revoke_token(session, token_id)
        except service.Refused as refused:
            raise CommandError(str(refused)) from refused
        typer.echo(f"Provider token {token.token_id} revoked.")


@provider_token_app.command("list")
def provider_token_list(config: ConfigOption = None) -> None:
    """Print every token: id, state, scopes, tenant, label, last use; tab-separated."""
    from callnow.store import provider_tokens

    with admin_session(load_settings(config)) as session:
        for token in provider_tokens.listed(session):
            state = "revoked" if token.revoked_at else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            tenant = token.tenant.name if token.tenant else "(all tenants)"
            scopes = ",".join(token.scopes)
            typer.echo(f"{token.token_id}\t{state}\t{scopes}\t{tenant}\t{token.label}\t{used}")
