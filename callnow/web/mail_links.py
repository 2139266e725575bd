"""The one-click Accept / Decline links mailed to an owner (see `callnow.notify.links`).

The link itself is the owner's authority (signed, for one request and one answer, expiring), so
it needs no login. GET only shows what the link will do, with one button: mail scanners and link
previews fetch links, and must not ring anyone's phone. The button POSTs to the same address,
which answers through `owner_live.answer_held`, the Pending page's own code: a request answered
once (by a link, the page or the timeout) is not answered again.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from callnow.i18n import N_
from callnow.i18n import gettext as _
from callnow.notify import links
from callnow.store import requests as request_store
from callnow.store.models import CallRequest, utcnow
from callnow.web.context import UnitOfWork, app_state, templates
from callnow.web.owner_language import negotiated_language, speak_as_owner
from callnow.web.owner_live import answer_held

router = APIRouter(
    prefix="/portal", include_in_schema=False, dependencies=[Depends(negotiated_language)]
)

GONE = N_("This request no longer waits for you: it was answered, cancelled or it expired.")
BAD_LINK = N_("This link is not valid or has expired. Open the Pending page in the portal instead.")


def _found(
    request: Request, session: Session, signed: str
) -> tuple[links.Answer, CallRequest] | None:
    answer = links.verify(app_state(request).settings.web.secret_key, signed, utcnow())
    if answer is None:
        return None
    call_request = request_store.by_token(session, answer.token)
    if call_request is None:
        return None
    # The link is the owner's: its page speaks their language, as their mail did.
    owner = call_request.profile.extension.owner
    if owner is not None:
        speak_as_owner(owner.language)
    return answer, call_request


def _page(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    context.setdefault("user", None)
    return templates.TemplateResponse(
        request, "portal/mail_answer.html", context, status_code=status_code
    )


@router.get("/mail-answer/{signed}", response_class=HTMLResponse)
def show(request: Request, signed: str, session: UnitOfWork) -> Response:
    found = _found(request, session, signed)
    if found is None:
        return _page(request, 404, message=_(BAD_LINK))
    answer, call_request = found
    return _page(
        request,
        action=answer.action,
        name=call_request.caller_name or _("Anonymous"),
        signed=signed,
    )


@router.post("/mail-answer/{signed}", response_class=HTMLResponse)
def answer(request: Request, signed: str, session: UnitOfWork) -> Response:
    found = _found(request, session, signed)
    if found is None:
        return _page(request, 404, message=_(BAD_LINK))
    answer, call_request = found
    if not answer_held(session, call_request, accept=answer.action == "accept"):
        return _page(request, 409, message=_(GONE))
    done = (
        _("Accepted. CallNow rings your extension now, then calls the visitor.")
        if answer.action == "accept"
        else _("Declined. The visitor is told you cannot take the call.")
    )
    return _page(request, message=done)
