"""Retired CallNow IDs: an old ID keeps leading to its page and is held from other pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callnow.domain.callnow_id import held_until
from callnow.store.models import Profile, RetiredCallNowId


def held_for_another(
    session: Session, callnow_id: str, profile_id: int | None, now: datetime
) -> bool:
    """True while `callnow_id` is a retired ID held for a page other than `profile_id`."""
    row = session.get(RetiredCallNowId, callnow_id)
    return row is not None and row.profile_id != profile_id and row.held_until > now


def current_id(session: Session, retired_id: str) -> str | None:
    """The ID that the page which gave up `retired_id` uses now, if any."""
    query = (
        select(Profile.callnow_id)
        .join(RetiredCallNowId, RetiredCallNowId.profile_id == Profile.id)
        .where(RetiredCallNowId.callnow_id == retired_id.strip().lower())
    )
    return session.scalars(query).first()


def retired_by(session: Session, profile_id: int) -> list[RetiredCallNowId]:
    query = (
        select(RetiredCallNowId)
        .where(RetiredCallNowId.profile_id == profile_id)
        .order_by(RetiredCallNowId.retired_at.desc())
    )
    return list(session.scalars(query))


def release(session: Session, callnow_id: str) -> None:
    """`callnow_id` becomes a page's live ID again: it no longer redirects anywhere."""
    row = session.get(RetiredCallNowId, callnow_id)
    if row is not None:
        session.delete(row)
        session.flush()


def retire(session: Session, profile_id: int, old_id: str, new_id: str, now: datetime) -> None:
    """Page `profile_id` moves from `old_id` to `new_id` (already checked): keep `old_id` as a
    held redirect. The caller changes the page's own ID."""
    if old_id == new_id:
        return
    release(session, new_id)  # the page takes back one of its own, or a hold that expired
    row = session.get(RetiredCallNowId, old_id)
    if row is None:
        row = RetiredCallNowId(callnow_id=old_id, profile_id=profile_id)
        session.add(row)
    row.profile_id = profile_id
    row.retired_at = now
    row.held_until = held_until(now)
    session.flush()


def rename(session: Session, profile: Profile, new_id: str, now: datetime) -> None:
    """Give the page `new_id` (already checked), keeping its old ID as a held redirect."""
    retire(session, profile.id, profile.callnow_id, new_id, now)
    profile.callnow_id = new_id
    session.flush()
