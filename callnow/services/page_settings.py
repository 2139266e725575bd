"""An owner changing their page: the same checks and the same audit from the portal and the API.

Every change is validated whole before anything is written, so a rejected save leaves the page
exactly as it was; the routes only map `InvalidChanges` to their own answer (a form with the
messages, or a 409/422 problem).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from callnow.domain.availability import WEEKDAYS, InvalidWindow, Window
from callnow.domain.callnow_id import InvalidCallNowId, held_refusal, normalise_callnow_id
from callnow.domain.embed import (
    EmbedSettings,
    InvalidEmbed,
    parse_colour,
    parse_label,
    parse_origins,
    parse_position,
)
from callnow.domain.page import MAX_RULES, MAX_WINDOWS, WELCOME_MAX_CHARS
from callnow.domain.rules import InvalidRule, Rule, rule_from_fields
from callnow.i18n import DEFAULT_LANGUAGE, SHIPPED, ngettext, use_language
from callnow.i18n import gettext as _
from callnow.i18n.formats import day_name
from callnow.store import audit, profiles, retired_ids
from callnow.store.models import Profile, User

_T = TypeVar("_T")

# The extension's display name column is this wide.
DISPLAY_NAME_MAX_CHARS = 80

# The owner's yes/no preferences, by their attribute name on the page.
SWITCHES = (
    "enabled",
    "do_not_allow",
    "confirmation_required",
    "show_name",
    "require_caller_name",
    "image_validation",
    "one_step_allowed",
    "confirm_on_web",
)


@dataclass(frozen=True)
class WindowFields:
    weekday: int
    start: str  # "HH:MM"
    end: str


@dataclass(frozen=True)
class PageChanges:
    """What an owner asks to change; None leaves a value as it is."""

    callnow_id: str | None = None
    # The portal asks the owner to confirm a rename (old links then redirect); the API's call
    # is itself the confirmation.
    rename_confirmed: bool = True
    switches: Mapping[str, bool] = field(default_factory=dict)
    welcome_message: str | None = None
    # "" sets the page back to the tenant's time zone.
    timezone: str | None = None
    windows: Sequence[WindowFields] | None = None
    # The name the page shows (the extension's display name); "" shows none.
    display_name: str | None = None
    embed: EmbedFields | None = None
    # The languages the page offers its visitors (codes) and the one it falls back to.
    languages: Sequence[str] | None = None
    default_language: str | None = None


def language_refusal(code: str) -> str | None:
    """Why `code` cannot be a language here (an owner's or a page's), or None."""
    if code in SHIPPED:
        return None
    return _("'%(code)s' is not a language CallNow speaks; choose one of: %(codes)s.") % {
        "code": code[:16],
        "codes": ", ".join(SHIPPED),
    }


def page_languages(
    languages: Sequence[str], default: str
) -> tuple[tuple[str, str] | None, dict[str, str]]:
    """(stored list, default) for a page, or every refusal. The list is kept in the shipped
    order; offering every shipped language is stored as "" (which also offers languages
    CallNow ships later)."""
    errors: dict[str, str] = {}
    chosen = [code.strip().lower() for code in languages if code.strip()]
    unknown = [code for code in chosen if code not in SHIPPED]
    if unknown:
        errors["languages"] = language_refusal(unknown[0]) or ""
    elif not chosen:
        errors["languages"] = _("Offer at least one language on your page.")
    default = default.strip().lower()
    if default not in SHIPPED:
        errors["default_language"] = language_refusal(default) or ""
    elif not errors and default not in chosen:
        errors["default_language"] = _(
            "The default language must be one of the languages your page offers."
        )
    if errors:
        return None, errors
    ordered = [code for code in SHIPPED if code in chosen]
    stored = "" if len(ordered) == len(SHIPPED) else ",".join(ordered)
    return (stored, default), {}


def set_owner_language(session: Session, user: User, language: str, *, via: str) -> None:
    """The owner's own language (portal, e-mails, phone prompts), or InvalidChanges."""
    code = language.strip().lower()
    refusal = language_refusal(code)
    if refusal is not None:
        raise InvalidChanges({"language": refusal})
    if user.language != code:
        user.language = code
        audit.record(
            session,
            actor=user,
            action="user.language",
            subject=user.email,
            tenant_id=user.tenant_id,
            details={"language": code},
            via=via,
        )
        session.flush()


@dataclass(frozen=True)
class EmbedFields:
    """The embeddable button as typed: origins one a line, label, colour (#rrggbb), position."""

    origins: str
    label: str
    colour: str
    position: str


def _embed(fields: EmbedFields) -> tuple[EmbedSettings | None, dict[str, str]]:
    """The settings, or every field's refusal at once."""
    errors: dict[str, str] = {}

    def checked(name: str, parse: Callable[[str], _T], text: str, fallback: _T) -> _T:
        try:
            return parse(text)
        except InvalidEmbed as exc:
            errors[name] = str(exc)
            return fallback

    embed = EmbedSettings(
        origins=checked("embed_origins", parse_origins, fields.origins, ()),
        label=checked("embed_label", parse_label, fields.label, ""),
        colour=checked("embed_colour", parse_colour, fields.colour, ""),
        position=checked("embed_position", parse_position, fields.position, ""),
    )
    return (None, errors) if errors else (embed, {})


class InvalidChanges(Exception):
    """Nothing was changed. `errors` maps a field to what was wrong with it; `taken` says the
    wanted CallNow ID belongs to another page (a conflict, not a typo)."""

    def __init__(self, errors: dict[str, str], *, taken: bool = False) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.taken = taken


def change_page(
    session: Session,
    profile: Profile,
    changes: PageChanges,
    *,
    actor: User | None,
    via: str,
    details: Mapping[str, object],
    now: datetime | None = None,
) -> None:
    """Apply `changes` to the page, or raise InvalidChanges having changed nothing."""
    now = now or datetime.now(UTC)
    errors: dict[str, str] = {}
    taken = False
    new_id = None
    if changes.callnow_id is not None:
        try:
            new_id = normalise_callnow_id(changes.callnow_id)
        except InvalidCallNowId as exc:
            errors["callnow_id"] = str(exc)
        else:
            other = profiles.by_callnow_id(session, new_id)
            if other is not None and other.id != profile.id:
                errors["callnow_id"] = _("The CallNow ID '%(id)s' is taken.") % {"id": new_id}
                taken = True
            elif retired_ids.held_for_another(session, new_id, profile.id, now):
                errors["callnow_id"] = held_refusal(new_id)
                taken = True
            elif new_id != profile.callnow_id and not changes.rename_confirmed:
                errors["callnow_id"] = _(
                    "Renaming '%(old)s' to '%(new)s': tick \"Yes, rename my page\" to confirm."
                    " The old address keeps redirecting to the new one."
                ) % {"old": profile.callnow_id, "new": new_id}
    unknown = set(changes.switches) - set(SWITCHES)
    if unknown:
        errors["form"] = f"Unknown settings: {', '.join(sorted(unknown))}."
    welcome = None if changes.welcome_message is None else changes.welcome_message.strip()
    if welcome is not None and len(welcome) > WELCOME_MAX_CHARS:
        errors["welcome_message"] = _("The welcome message is at most %(most)d characters.") % {
            "most": WELCOME_MAX_CHARS
        }
    display_name = None if changes.display_name is None else changes.display_name.strip()
    if display_name is not None:
        if len(display_name) > DISPLAY_NAME_MAX_CHARS:
            errors["display_name"] = _("The shown name is at most %(most)d characters.") % {
                "most": DISPLAY_NAME_MAX_CHARS
            }
        elif any(not c.isprintable() for c in display_name):
            errors["display_name"] = _("The shown name may not contain control characters.")
    timezone = None if changes.timezone is None else changes.timezone.strip()
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = _(
                "'%(zone)s' is not a known time zone (e.g. Australia/Sydney)."
            ) % {"zone": timezone[:64]}
    windows: list[Window] | None = None
    if changes.windows is not None:
        windows, window_error = _windows(changes.windows)
        if window_error:
            errors["windows"] = window_error
    embed = None
    if changes.embed is not None:
        embed, embed_errors = _embed(changes.embed)
        errors.update(embed_errors)
    offered = None
    if changes.languages is not None or changes.default_language is not None:
        current = [c for c in profile.languages.split(",") if c] or list(SHIPPED)
        offered, language_errors = page_languages(
            changes.languages if changes.languages is not None else current,
            changes.default_language
            if changes.default_language is not None
            else profile.default_language,
        )
        errors.update(language_errors)
    if errors:
        raise InvalidChanges(errors, taken=taken)

    if display_name is not None:
        # The extension's row before the page's: an edit of the extension alone locks them in
        # that order (its trigger renews the page's revision), and on PostgreSQL two edits
        # locking them in opposite orders deadlock, failing one (decision 0015).
        profile.extension.display_name = display_name
        session.flush()
    if new_id is not None:
        # The old ID keeps redirecting here and is held from other pages (printed links).
        retired_ids.rename(session, profile, new_id, now)
    for name, on in changes.switches.items():
        setattr(profile, name, on)
    if welcome is not None:
        profile.welcome_message = welcome
    if timezone is not None:
        profile.timezone = timezone or None
    if windows is not None:
        profiles.replace_windows(session, profile, windows)
    if embed is not None:
        profiles.set_embed(profile, embed)
    if offered is not None:
        profile.languages, profile.default_language = offered
    audit.record_for_page(
        session, profile, actor=actor, action="profile.update", via=via, details=dict(details)
    )
    session.flush()
    session.refresh(profile)


def _windows(rows: Sequence[WindowFields]) -> tuple[list[Window], str | None]:
    if len(rows) > MAX_WINDOWS:
        return [], _("At most %(most)d time windows.") % {"most": MAX_WINDOWS}
    windows = []
    for number, row in enumerate(rows, start=1):
        try:
            windows.append(Window.parse(row.weekday, row.start, row.end))
        except (InvalidWindow, ValueError) as exc:
            if 0 <= row.weekday < len(WEEKDAYS):
                return [], _("Hours row %(number)d (%(day)s): %(error)s") % {
                    "number": number,
                    "day": day_name(row.weekday),
                    "error": exc,
                }
            return [], _("Hours row %(number)d: %(error)s") % {"number": number, "error": exc}
    return windows, None


@dataclass(frozen=True)
class RuleFields:
    """One rule as typed in the portal or sent to the API."""

    action: str
    number_match: str = ""
    number_value: str = ""
    name_match: str = ""
    name_value: str = ""


def parse_rule(profile: Profile, fields: RuleFields) -> Rule:
    """A domain rule in the page's region, or InvalidRule."""
    return rule_from_fields(
        fields.action,
        fields.number_match,
        fields.number_value,
        fields.name_match,
        fields.name_value,
        profiles.tenant_of(profile).region,
    )


def set_rules(
    session: Session,
    profile: Profile,
    rules: Sequence[Rule],
    *,
    actor: User,
    via: str,
    action: str,
) -> None:
    """Replace the page's ordered rules, or raise InvalidRule having changed nothing."""
    if len(rules) > MAX_RULES:
        raise InvalidRule(
            ngettext("At most %(most)d rule.", "At most %(most)d rules.", MAX_RULES)
            % {"most": MAX_RULES}
        )
    profiles.replace_rules(session, profile, rules)
    with use_language(DEFAULT_LANGUAGE):  # the audit log is read in English
        described = {"rules": [r.describe() for r in rules]}
    audit.record_for_page(session, profile, actor=actor, action=action, via=via, details=described)
    session.flush()
    session.refresh(profile)
