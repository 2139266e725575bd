"""The portal's webhook page: set or clear the URL, see the secret once, see recent deliveries.

An owner sets the webhook for their own requests; a tenant admin may also set one for every
request of the tenant. A new URL always gets a new secret, shown once (like an API key).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from callnow.domain.webhook_url import InvalidWebhookUrl
from callnow.i18n import gettext as _
from callnow.store import audit
from callnow.store import webhooks as store  # also registers the enqueue listener
from callnow.store.models import User, WebhookEndpoint
from callnow.web import forms
from callnow.web.context import UnitOfWork
from callnow.web.owner_language import negotiated_language
from callnow.web.portal import _checked_form, _render, _to_login, current_user

router = APIRouter(
    prefix="/portal", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)


def _tenant_scope(user: User) -> int | None:
    return user.tenant_id if user.role == "tenant_admin" else None


def _endpoint(session: Session, user: User, scope: str) -> WebhookEndpoint | None:
    tenant_id = _tenant_scope(user)
    if scope == "tenant" and tenant_id is not None:
        return store.tenant_endpoint(session, tenant_id)
    return store.owner_endpoint(session, user.id)


def _page(
    request: Request,
    session: Session,
    user: User,
    *,
    new_secret: str | None = None,
    error: str | None = None,
    url_value: str = "",
    status_code: int = 200,
) -> Response:
    tenant_id = _tenant_scope(user)
    return _render(
        request,
        "webhooks.html",
        user,
        owner_endpoint=store.owner_endpoint(session, user.id),
        example_hook="https://example.com/callnow-hook",
        owner_deliveries=store.recent_deliveries(session, owner_user_id=user.id),
        tenant_id=tenant_id,
        tenant_endpoint=store.tenant_endpoint(session, tenant_id) if tenant_id else None,
        tenant_deliveries=(
            store.recent_deliveries(session, tenant_id=tenant_id) if tenant_id else []
        ),
        new_secret=new_secret,
        error=error,
        url_value=url_value,
        status_code=status_code,
    )


@router.get("/webhooks")
def webhooks_page(request: Request, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    return _page(request, session, user)


@router.post("/webhooks")
def change_webhook(request: Request, posted: forms.PostedForm, session: UnitOfWork) -> Response:
    user = current_user(request, session)
    if user is None:
        return _to_login()
    form = _checked_form(request, posted)
    if form is None:
        return _page(
            request, session, user, error=_("The form expired; please try again."), status_code=400
        )
    scope = "tenant" if forms.field(form, "scope", 10) == "tenant" else "owner"
    tenant_id = _tenant_scope(user)
    if scope == "tenant" and tenant_id is None:
        return _page(
            request, session, user, error=_("Only a tenant admin may do that."), status_code=403
        )
    operation = forms.field(form, "op", 10)
    if operation == "clear":
        endpoint = _endpoint(session, user, scope)
        store.clear(endpoint)
        if endpoint is not None:
            audit.record(
                session,
                actor=user,
                action="webhook.clear",
                subject=scope,
                tenant_id=user.tenant_id,
                via="portal",
                details={"url": endpoint.url},
            )
        return RedirectResponse("/portal/webhooks", status_code=303)
    if operation != "set":
        return _page(request, session, user, error=_("Unknown change."), status_code=400)
    url = forms.field(form, "url", 600)
    try:
        if scope == "tenant" and tenant_id is not None:
            endpoint, secret = store.set_tenant_url(session, tenant_id, url)
        else:
            endpoint, secret = store.set_owner_url(session, user, url)
    except InvalidWebhookUrl as exc:
        return _page(request, session, user, error=str(exc), url_value=url, status_code=422)
    audit.record(
        session,
        actor=user,
        action="webhook.set",
        subject=scope,
        tenant_id=user.tenant_id,
        via="portal",
        details={"url": endpoint.url},  # never the secret
    )
    session.flush()
    return _page(request, session, user, new_secret=secret)
