"""Signed-in sessions of the owner portal and the platform admin."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callnow.store.models import Base, User, UtcDateTime, utcnow


class WebSession(Base):
    """One sign-in. The browser holds a random token; only its SHA-256 is stored, so a copy of
    the table opens nothing. Rows stay after they end: their networks are where the user has
    signed in before (see `web_sessions.known_networks`)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    realm: Mapped[str] = mapped_column(String(10))
    # Binds form tokens to this session: they are worthless once it ends.
    csrf_key: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    network: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship()

    __table_args__ = (CheckConstraint("realm IN ('portal', 'admin')", name="realm"),)

    def __str__(self) -> str:
        return f"{self.realm} session {self.id}"
