"""Tables of owner notifications: the mail outbox, each owner's choices, password reset tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callnow.store.models import Base, UtcDateTime, utcnow


class MailOutbox(Base):
    """One notice for one owner, written in the transaction of what it reports and sent later.

    The sender claims a row by pushing `next_attempt_at` out (a lease) and writing `claim`; it
    marks it sent in one transaction after the SMTP server accepted it. `message_id` is fixed when
    the row is written, so a retry after a crash between the two repeats the same Message-ID.
    """

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("call_requests.id"), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    gave_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The Message-ID of the digest that carried this notice, when it went out in one.
    sent_as: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (
        Index("ix_mail_outbox_due", "sent_at", "gave_up_at", "next_attempt_at"),
        Index("ix_mail_outbox_user_sent", "user_id", "sent_at"),
    )


class NotificationPrefs(Base):
    """Which kinds of notice an owner wants by e-mail; no row means every kind, not paused."""

    __tablename__ = "notification_prefs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Comma-separated kinds (see callnow.domain.notices.KINDS).
    kinds: Mapped[str] = mapped_column(String(200), default="")


class PasswordReset(Base):
    """A reset link sent by e-mail: only its SHA-256 is kept; it expires and works once."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
