"""Small helpers the web tests share: reading form tokens and changing a profile directly."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from callnow.domain.availability import Window
from callnow.store import profiles
from callnow.store.models import CallRequest, Profile


def form_token(html: str, name: str = "form_token") -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert match, f"no {name} in page"
    return match.group(1)


def set_profile(
    world: Any, callnow_id: str, windows: list[Window] | None = None, **values: Any
) -> None:
    with world.sessions() as session, session.begin():
        profile = session.scalars(select(Profile).where(Profile.callnow_id == callnow_id)).one()
        for key, value in values.items():
            setattr(profile, key, value)
        if windows is not None:
            profiles.replace_windows(session, profile, windows)


def all_requests(world: Any) -> list[CallRequest]:
    with world.sessions() as session:
        return list(session.scalars(select(CallRequest).order_by(CallRequest.id)))


def post_form(world: Any, callnow_id: str, **fields: str):
    page = world.client.get(f"/callnow/{callnow_id}")
    data = {"form_token": form_token(page.text), **fields}
    return world.client.post(f"/callnow/{callnow_id}", data=data)
