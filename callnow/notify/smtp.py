"""One SMTP conversation: connect (plain, STARTTLS or implicit TLS), log in, send, quit.

Blocking (smtplib); the sender runs it in a worker thread.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from callnow.config import MailSettings


class MailError(Exception):
    """The server refused or could not be reached; `permanent` means retrying will not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def send(
    settings: MailSettings,
    messages: list[EmailMessage],
    after_each: Callable[[int], None] = lambda _index: None,
) -> None:
    """Send every message in one connection, calling `after_each(i)` once the server accepted
    message i; raises MailError on the first failure."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    try:
        client: smtplib.SMTP
        if settings.security == "tls":
            client = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s
            )
        with client:
            client.ehlo()
            if settings.security == "starttls":
                # Refuse to send in the clear to a server that does not offer STARTTLS.
                client.starttls(context=context)
                client.ehlo()
            if settings.username:
                client.login(settings.username, settings.password)
            for index, message in enumerate(messages):
                client.send_message(message)
                after_each(index)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise MailError(
            f"recipient refused: {codes}", permanent=all(c >= 500 for c in codes)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300]) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}"[:300]) from exc
