"""Tables of the provider API: its tokens and the log of every use of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callnow.store.models import Base, Tenant, UtcDateTime, utcnow


class ProviderToken(Base):
    """A provider system's credential: scoped, optionally bound to one tenant, revocable.

    Only the SHA-256 of the secret is kept; the secret is shown once, when it is created."""

    __tablename__ = "provider_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(60), default="")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # None: every tenant of the platform; otherwise only this tenant's objects.
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    tenant: Mapped[Tenant | None] = relationship()


class ProviderTokenUse(Base):
    """One call of the provider API with a known token, refused or not. Append-only."""

    __tablename__ = "provider_token_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("provider_tokens.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(120))  # the route's template, never its values
    status: Mapped[int] = mapped_column(Integer)
    source_address: Mapped[str] = mapped_column(String(45), default="")
