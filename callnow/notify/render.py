"""The words of each mail: one notice, or a digest of several, as plain text and as HTML.

A booked request's notices name its slot on the page's clock, with the zone's name, written the
owner's language's way (`callnow.i18n.formats`).

A mail is rendered when it is sent, from the notice's stored details; the Message-ID comes from
the outbox row, and the links are deterministic, so a retried mail is the same mail. The sender
renders it in the owner's language (`callnow.i18n.use_language`), so every word below goes
through gettext and dates follow that language's locale.

Each paragraph is a `html.Line`: the plain-text part writes its link out, the HTML part
(`notify/html.py`) shows it as a button or a link. Both parts say the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as format_local_datetime
from babel.lists import format_list

from callnow.domain import web_confirmation
from callnow.domain.decision import RejectReason
from callnow.domain.notices import Kind
from callnow.i18n import N_, active_language, formats, ngettext
from callnow.i18n import gettext as _
from callnow.notify import html, links
from callnow.notify.html import Line, Section, linked
from callnow.store.mail import Notice

SUBJECTS = {
    Kind.AWAITING: N_("Call back %(who)s? Accept or decline"),
    Kind.MISSED: N_("Missed callback request from %(who)s"),
    Kind.DECLINED: N_("Callback request from %(who)s was declined"),
    Kind.MESSAGE: N_("%(who)s left you a message"),
    Kind.BOOKING: N_("%(who)s booked a call"),
    Kind.BUDGET: N_("Your CallNow budget is nearly used up"),
    Kind.FLOOD: N_("Unusual number of requests on your CallNow page"),
    Kind.PASSWORD_RESET: N_("Reset your CallNow password"),
}

# Why a request ended, as stored (a rejection reason), in words; other reasons show as stored.
REASONS = {
    RejectReason.DISABLED: N_("your page is off"),
    RejectReason.NOT_ACCEPTING: N_("you do not allow people to contact you"),
    RejectReason.OUTSIDE_HOURS: N_("it came outside your hours"),
    RejectReason.RULE: N_("one of your rules rejected it"),
    RejectReason.DECLINED_RECENTLY: N_("you declined this number a short while ago"),
}

# The limits a budget notice names (`billing.budget_warning.LIMITS`).
LIMITS = {
    "daily cap": N_("daily cap"),
    "prepaid balance": N_("prepaid balance"),
    "monthly credit limit": N_("monthly credit limit"),
}


# A booking's subject when its slot is known: the owner sees when without opening the mail.
BOOKING_SUBJECT = N_("%(who)s booked a call for %(when)s")


def subject_of(notice: Notice) -> str:
    who = _who(notice.details)
    booked = _booked_for(notice.details)
    if notice.kind is Kind.BOOKING and booked is not None:
        moment, tz = booked
        return _(BOOKING_SUBJECT) % {"who": who, "when": formats.date_time(moment, tz)}
    return _(SUBJECTS[notice.kind]) % {"who": who}


def _booked_for(details: dict[str, object]) -> tuple[datetime, ZoneInfo] | None:
    """A booked request's slot and the page's zone, as its notice stored them, or None."""
    if not details.get("scheduled_for") or not details.get("timezone"):
        return None
    try:
        moment = datetime.fromisoformat(str(details["scheduled_for"]))
        tz = ZoneInfo(str(details["timezone"]))
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), tz


def _slot_words(booked: tuple[datetime, ZoneInfo]) -> dict[str, str]:
    moment, tz = booked
    return {"when": formats.date_time(moment, tz), "zone": formats.zone_name(moment, tz)}


@dataclass(frozen=True)
class MailContext:
    secret_key: str
    base_url: str
    from_address: str
    answer_link: timedelta
    now: datetime

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def message_id(self, local: str) -> str:
        return f"<{local}@{self.domain}>"


def _who(details: dict[str, object]) -> str:
    name = str(details.get("name") or "").strip()
    number = str(details.get("number") or "")
    if name and number:
        return _("%(name)s (%(number)s)") % {"name": name, "number": number}
    return name or number or _("a visitor")


def _reason(details: dict[str, object], empty: str) -> str:
    reason = str(details.get("reason") or "").strip()
    if not reason:
        return empty
    return _(REASONS[RejectReason(reason)]) if reason in REASONS else reason


def _flood_until(details: dict[str, object]) -> str:
    """The end of a flood's CAPTCHA period (stored as UTC "YYYY-MM-DD HH:MM"), in the owner's
    language, or words for "until it is over"."""
    try:
        until = datetime.strptime(str(details.get("until")), "%Y-%m-%d %H:%M")
    except ValueError:
        return _("the flood is over")
    return format_local_datetime(until, "medium", tzinfo=UTC, locale=active_language())


def _budget_text(details: dict[str, object]) -> str:
    limits = details.get("limits")
    if isinstance(limits, list) and limits and all(str(x) in LIMITS for x in limits):
        named = format_list([_(LIMITS[str(x)]) for x in limits], locale=active_language())
        return _("Little is left of your %(limits)s. Calls stop when it runs out.") % {
            "limits": named
        }
    return str(details.get("text") or "").strip()


def _requested_at(details: dict[str, object]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(details.get("requested_at")))
    except ValueError:
        return None


def answer_urls(ctx: MailContext, details: dict[str, object]) -> dict[str, str] | None:
    """The Accept and Decline links of an awaiting notice, or None once it can no longer be
    answered (a retry after the request's own deadline)."""
    requested = _requested_at(details)
    token = str(details.get("token") or "")
    if requested is None or not token:
        return None
    expires = min(
        web_confirmation.deadline(requested), requested + ctx.answer_link, ctx.now + ctx.answer_link
    )
    if expires <= ctx.now:
        return None
    path = ctx.base_url.rstrip("/") + "/portal/mail-answer/"
    return {
        action: path + quote(links.sign(ctx.secret_key, token, action, expires))
        for action in links.ACTIONS
    }


def _lines(ctx: MailContext, notice: Notice, *, intro: bool = True) -> list[Line]:
    d = notice.details
    who = _who(d)
    page = str(d.get("callnow_id") or "")
    base = ctx.base_url.rstrip("/")
    if notice.kind is Kind.PASSWORD_RESET:
        link = f"{base}/portal/reset/" + quote(str(d.get("token") or ""))
        return [
            Line(_("Someone (we hope you) asked to reset the password of your CallNow account.")),
            linked(
                _("Choose a new password here (the link works once): %(link)s"), link, button=True
            ),
            Line(_("If it was not you, ignore this mail: your password stays as it is.")),
        ]
    if notice.kind is Kind.FLOOD:
        return [
            Line(
                _(
                    "Your page %(page)s received far more requests than usual, so every visitor"
                    " is asked to solve a CAPTCHA until %(until)s (UTC)."
                )
                % {"page": page, "until": _flood_until(d)}
            ),
            linked(
                _(
                    "The page stays open and nothing else changed. If you would rather close it"
                    " for a while, pause it in the portal: %(link)s"
                ),
                f"{base}/portal",
            ),
        ]
    words: list[str] = []
    if page and intro:
        words.append(
            _("%(who)s asked on your page %(page)s to be called back.") % {"who": who, "page": page}
        )
    booked = _booked_for(d)
    if notice.kind is Kind.BOOKING and booked is not None:
        words += [
            _("They booked a call for %(when)s (%(zone)s).") % _slot_words(booked),
            _("At that time CallNow rings your extension first, then calls them."),
        ]
    elif booked is not None:
        words.append(_("They asked for a call at %(when)s (%(zone)s).") % _slot_words(booked))
    answers: list[Line] = []
    if notice.kind is Kind.AWAITING:
        urls = answer_urls(ctx, d)
        if urls is None:
            words.append(_("This request no longer waits for you."))
        else:
            answers = [
                linked(_("Accept (call them back): %(link)s"), urls["accept"], button=True),
                linked(_("Decline: %(link)s"), urls["decline"], button=True),
            ]
    elif notice.kind is Kind.MISSED:
        reason = _reason(d, "")
        words.append(
            _("Nobody answered it, so it ended (%(reason)s).") % {"reason": reason}
            if reason
            else _("Nobody answered it, so it ended.")
        )
    elif notice.kind is Kind.DECLINED:
        words.append(
            _("It was declined: %(reason)s") % {"reason": _reason(d, _("no reason given"))}
        )
    elif notice.kind is Kind.BUDGET:
        text = _budget_text(d)
        if text:
            words.append(text)
    elif notice.kind is not Kind.BOOKING:
        text = str(d.get("text") or "").strip()
        if text:
            words.append(text)
    requests = linked(_("Your requests: %(link)s"), f"{base}/portal/requests")
    return [*map(Line, words), *answers, requests]


def _message(
    ctx: MailContext, to: str, subject: str, text: str, page: str, local_id: str
) -> EmailMessage:
    """`text` and `page`: the same mail as plain text and as HTML. HTML goes last: of the parts
    of `multipart/alternative`, a mail program shows the last one it can."""
    message = EmailMessage()
    message["From"] = ctx.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(ctx.now)
    message["Message-ID"] = ctx.message_id(local_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(page, subtype="html")
    return message


def _footer(ctx: MailContext) -> Line:
    link = ctx.base_url.rstrip("/") + "/portal/notifications"
    return linked(_("CallNow. Choose which notices you get: %(link)s"), link)


def _plain(paragraphs: Iterable[str], footer: Line) -> str:
    """The plain-text part: the paragraphs, then the footer below a signature separator."""
    return "\n\n".join(paragraphs) + "\n\n-- \n" + footer.text + "\n"


def single(ctx: MailContext, notice: Notice) -> EmailMessage:
    subject = subject_of(notice)[:200]
    lines = _lines(ctx, notice)
    footer = _footer(ctx)
    text = _plain((line.text for line in lines), footer)
    page = html.document(subject, lines, [], footer)
    return _message(ctx, notice.email, subject, text, page, notice.message_id)


def digest(ctx: MailContext, notices: list[Notice]) -> EmailMessage:
    """Several notices of one owner in one mail. Its Message-ID is the first notice's with a
    `.digest` suffix: a retry of the same group repeats it."""
    first = notices[0]
    count = len(notices)
    intro = Line(
        ngettext(
            "%(count)d thing happened on your CallNow pages:",
            "%(count)d things happened on your CallNow pages:",
            count,
        )
        % {"count": count}
    )
    sections = [
        Section(f"{number}. {subject_of(notice)}", _lines(ctx, notice, intro=False))
        for number, notice in enumerate(notices, start=1)
    ]
    footer = _footer(ctx)
    text = _plain(
        [intro.text]
        + [
            f"{section.heading}\n   " + "\n   ".join(line.text for line in section.lines)
            for section in sections
        ],
        footer,
    )
    subject = ngettext(
        "CallNow digest: %(count)d notice", "CallNow digest: %(count)d notices", count
    ) % {"count": count}
    page = html.document(subject, [intro], sections, footer)
    return _message(ctx, first.email, subject, text, page, digest_local_id(notices))


def digest_local_id(notices: list[Notice]) -> str:
    return f"{notices[0].message_id}.digest{len(notices)}"
