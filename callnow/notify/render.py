"""The words of each mail: one notice, or a digest of several. Plain text only.

A mail is rendered when it is sent, from the notice's stored details; the Message-ID comes from
the outbox row, and the links are deterministic, so a retried mail is the same mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from callnow.domain import web_confirmation
from callnow.domain.notices import Kind
from callnow.notify import links
from callnow.store.mail import Notice

SUBJECTS = {
    Kind.AWAITING: "Call back {who}? Accept or decline",
    Kind.MISSED: "Missed callback request from {who}",
    Kind.DECLINED: "Callback request from {who} was declined",
    Kind.MESSAGE: "{who} left you a message",
    Kind.BOOKING: "{who} booked a call",
    Kind.BUDGET: "Your CallNow budget is nearly used up",
    Kind.FLOOD: "Unusual number of requests on your CallNow page",
    Kind.PASSWORD_RESET: "Reset your CallNow password",
}


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
    return f"{name} ({number})" if name and number else name or number or "a visitor"


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


def _lines(ctx: MailContext, notice: Notice, *, intro: bool = True) -> list[str]:
    d = notice.details
    who = _who(d)
    page = str(d.get("callnow_id") or "")
    base = ctx.base_url.rstrip("/")
    if notice.kind is Kind.PASSWORD_RESET:
        return [
            "Someone (we hope you) asked to reset the password of your CallNow account.",
            f"Choose a new password here (the link works once): {base}/portal/reset/"
            + quote(str(d.get("token") or "")),
            "If it was not you, ignore this mail: your password stays as it is.",
        ]
    if notice.kind is Kind.FLOOD:
        return [
            f"Your page {page} received far more requests than usual, so every visitor is asked"
            f" to solve a CAPTCHA until {d.get('until') or 'the flood is over'} (UTC).",
            "The page stays open and nothing else changed. If you would rather close it for a"
            f" while, pause it in the portal: {base}/portal",
        ]
    lines = [f"{who} asked on your page {page} to be called back."] if page and intro else []
    if notice.kind is Kind.AWAITING:
        urls = answer_urls(ctx, d)
        if urls is None:
            lines.append("This request no longer waits for you.")
        else:
            lines += [f"Accept (call them back): {urls['accept']}", f"Decline: {urls['decline']}"]
    elif notice.kind is Kind.MISSED:
        lines.append("Nobody answered it, so it ended. " + str(d.get("reason") or ""))
    elif notice.kind is Kind.DECLINED:
        lines.append("It was declined: " + str(d.get("reason") or "no reason given"))
    else:
        text = str(d.get("text") or "").strip()
        if text:
            lines.append(text)
    lines.append(f"Your requests: {base}/portal/requests")
    return lines


def _message(ctx: MailContext, to: str, subject: str, body: str, local_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = ctx.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(ctx.now)
    message["Message-ID"] = ctx.message_id(local_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


FOOTER = "\n\n-- \nCallNow. Choose which notices you get: {base}/portal/notifications\n"


def single(ctx: MailContext, notice: Notice) -> EmailMessage:
    subject = SUBJECTS[notice.kind].format(who=_who(notice.details))
    body = "\n\n".join(_lines(ctx, notice)) + FOOTER.format(base=ctx.base_url.rstrip("/"))
    return _message(ctx, notice.email, subject[:200], body, notice.message_id)


def digest(ctx: MailContext, notices: list[Notice]) -> EmailMessage:
    """Several notices of one owner in one mail. Its Message-ID is the first notice's with a
    `.digest` suffix: a retry of the same group repeats it."""
    first = notices[0]
    parts = [f"{len(notices)} things happened on your CallNow pages:"]
    for number, notice in enumerate(notices, start=1):
        title = SUBJECTS[notice.kind].format(who=_who(notice.details))
        parts.append(f"{number}. {title}\n   " + "\n   ".join(_lines(ctx, notice, intro=False)))
    body = "\n\n".join(parts) + FOOTER.format(base=ctx.base_url.rstrip("/"))
    subject = f"CallNow digest: {len(notices)} notices"
    return _message(ctx, first.email, subject, body, digest_local_id(notices))


def digest_local_id(notices: list[Notice]) -> str:
    return f"{notices[0].message_id}.digest{len(notices)}"
