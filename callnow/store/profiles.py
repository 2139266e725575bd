"""Reading and changing CallNow profiles, their hours and their rules."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, inspect, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from callnow.domain import rules as domain_rules
from callnow.domain.availability import Window
from callnow.domain.decision import OwnerPreferences
from callnow.domain.destination_policy import DestinationPolicy, PrefixList
from callnow.domain.embed import DEFAULT_COLOUR, DEFAULT_LABEL, DEFAULT_POSITION, EmbedSettings
from callnow.store.models import AvailabilityWindow, Extension, Profile, RuleRow, Tenant, User


def _with_everything():
    return (
        joinedload(Profile.extension).joinedload(Extension.tenant),
        joinedload(Profile.extension).joinedload(Extension.owner),
        selectinload(Profile.windows),
        selectinload(Profile.rules),
    )


# Built once, with the value as a parameter: every visitor's page and form post loads a profile
# with everything. Building and keying the statement with its loader options, and the
# select-in loaders' own statements, cost more CPU than the queries themselves.
@cache
def _profile_where(column: str) -> Select[Profile]:
    return (
        select(Profile)
        .where(getattr(Profile, column) == bindparam("value"))
        .options(
            joinedload(Profile.extension).joinedload(Extension.tenant),
            joinedload(Profile.extension).joinedload(Extension.owner),
        )
    )


@cache
def _collection_of_profile(name: str) -> Select[Any]:
    """The rows of one of a profile's collections (hours or rules), in the relationship's order."""
    relationship = getattr(Profile, name).property
    rows = relationship.mapper.class_
    return (
        select(rows)
        .where(rows.profile_id == bindparam("profile_id"))
        .order_by(*relationship.order_by)
    )


def _with_everything_where(session: Session, column: str, value: object) -> Profile | None:
    profile = session.scalars(_profile_where(column), {"value": value}).first()
    if profile is None:
        return None
    # A collection already loaded in this session (perhaps changed, not yet flushed) is kept.
    unloaded = inspect(profile).unloaded
    for name in ("windows", "rules"):
        if name in unloaded:
            query = _collection_of_profile(name)
            rows = session.scalars(query, {"profile_id": profile.id}).all()
            set_committed_value(profile, name, rows)
    return profile


def by_callnow_id(session: Session, callnow_id: str) -> Profile | None:
    return _with_everything_where(session, "callnow_id", callnow_id.strip().lower())


def by_id(session: Session, profile_id: int) -> Profile | None:
    return _with_everything_where(session, "id", profile_id)


def owned_by(session: Session, user_id: int) -> list[Profile]:
    query = (
        select(Profile)
        .join(Profile.extension)
        .where(Extension.owner_user_id == user_id)
        .options(*_with_everything())
        .order_by(Profile.callnow_id)
    )
    return list(session.scalars(query))


def tenant_of(profile: Profile) -> Tenant:
    return profile.extension.tenant


def timezone_of(profile: Profile) -> ZoneInfo:
    return ZoneInfo(profile.timezone or profile.extension.tenant.timezone)


def embed_of(profile: Profile) -> EmbedSettings:
    """The page's embeddable button as stored; rows written before it existed get defaults."""
    return EmbedSettings(
        origins=tuple(line for line in (profile.embed_origins or "").splitlines() if line),
        label=profile.embed_label or DEFAULT_LABEL,
        colour=profile.embed_colour or DEFAULT_COLOUR,
        position=profile.embed_position or DEFAULT_POSITION,
    )


def set_embed(profile: Profile, embed: EmbedSettings) -> None:
    profile.embed_origins = "\n".join(embed.origins)
    profile.embed_label = embed.label
    profile.embed_colour = embed.colour
    profile.embed_position = embed.position


def owner_locale(
    session: Session, user: User, default_zone: str, default_region: str
) -> tuple[ZoneInfo, str]:
    """The zone and country an owner reads the portal in: their first page's, else their
    tenant's, else the platform's defaults."""
    pages = owned_by(session, user.id)
    if pages:
        return timezone_of(pages[0]), tenant_of(pages[0]).region
    if user.tenant is not None:
        return ZoneInfo(user.tenant.timezone), user.tenant.region
    return ZoneInfo(default_zone), default_region


def windows_of(profile: Profile) -> list[Window]:
    return [Window(w.weekday, w.start_minute, w.end_minute) for w in profile.windows]


def rules_of(profile: Profile) -> list[domain_rules.Rule]:
    return [
        domain_rules.Rule(
            action=domain_rules.RuleAction(r.action),
            number_match=domain_rules.NumberMatch(r.number_match) if r.number_match else None,
            number_value=r.number_value,
            name_match=domain_rules.NameMatch(r.name_match) if r.name_match else None,
            name_value=r.name_value,
        )
        for r in profile.rules
    ]


def preferences_of(profile: Profile) -> OwnerPreferences:
    tenant = profile.extension.tenant
    return OwnerPreferences(
        # CallNow works only for tenants with Call API access, and not while the provider
        # has suspended the page or its tenant.
        enabled=profile.enabled
        and tenant.call_api_access
        and profile.suspended_at is None
        and tenant.suspended_at is None,
        do_not_allow=profile.do_not_allow,
        confirmation_required=profile.confirmation_required,
        windows=windows_of(profile),
        timezone=timezone_of(profile),
        rules=rules_of(profile),
        confirm_on_web=profile.confirm_on_web,
    )


def replace_windows(session: Session, profile: Profile, windows: Sequence[Window]) -> None:
    profile.windows.clear()
    session.flush()
    for w in windows:
        profile.windows.append(
            AvailabilityWindow(
                weekday=w.weekday, start_minute=w.start_minute, end_minute=w.end_minute
            )
        )


def replace_rules(session: Session, profile: Profile, rules: Sequence[domain_rules.Rule]) -> None:
    profile.rules.clear()
    session.flush()
    for position, rule in enumerate(rules, start=1):
        profile.rules.append(
            RuleRow(
                position=position,
                action=rule.action.value,
                number_match=rule.number_match.value if rule.number_match else None,
                number_value=rule.number_value,
                name_match=rule.name_match.value if rule.name_match else None,
                name_value=rule.name_value,
            )
        )


def destination_policy(tenant: Tenant, platform_prefixes: PrefixList) -> DestinationPolicy:
    """What this tenant's pages may call: its own region plus any extra countries it allows."""
    return DestinationPolicy(
        allowed_regions=frozenset({tenant.region, *(tenant.extra_countries or [])}),
        platform=platform_prefixes,
        tenant=PrefixList(
            blocked=tuple(tenant.blocked_prefixes or ()),
            allowed=tuple(tenant.allowed_prefixes or ()),
        ),
    )
