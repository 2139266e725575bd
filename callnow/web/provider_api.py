"""Provider API v1: a provider's provisioning system managing tenants, users, extensions,
CallNow pages, budgets and the do-not-call list, with scoped provider tokens.

Routes only translate HTTP to `services.provisioning`; every refusal is a problem+json answer
(RFC 9457) with a stable `code`, and every call made with a known token is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask, BackgroundTasks

from callnow.domain.page import WELCOME_MAX_CHARS
from callnow.services import page_settings
from callnow.services import provisioning as service
from callnow.services.provisioning import Caller, Refused
from callnow.store import profiles, provider_tokens
from callnow.store.db import transaction
from callnow.store.models import Extension, Profile, Tenant, User
from callnow.web.api import WindowModel, windows_out
from callnow.web.context import app_state, client_address

log = structlog.get_logger(__name__)
PREFIX = "/api/provider/v1"
PROBLEM_TYPE = "application/problem+json"
STATUS_OF_KIND = {"invalid": 422, "not_found": 404, "conflict": 409, "forbidden": 403}


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable, `detail` is for people."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: dict[str, str] | None = None


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_TYPE: {"schema": Problem.model_json_schema()}}


def _described(description: str) -> dict[str, Any]:
    return {"description": description, "content": _problem_content()}


_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("The body is not valid JSON"),
    401: _described("No valid provider token: Authorization: Bearer <token>"),
    403: _described("The token lacks the route's scope, or is bound to one tenant"),
    404: _described("No such object among the token's tenants"),
    409: _described("A conflict with what exists (a taken name, history that must stay)"),
    413: {"description": "The request body is too large", "content": _PLAIN_TEXT},
    414: {"description": "The address (its query string) is too long", "content": _PLAIN_TEXT},
    422: _described("A field is not valid; `errors` names the fields where it can"),
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    from http import HTTPStatus

    body = Problem(
        title=HTTPStatus(status).phrase, status=status, code=code, detail=detail, errors=errors
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_TYPE,
    )


class _Unauthenticated(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            401,
            "A valid provider token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


class _MissingScope(HTTPException):
    def __init__(self, scope: str) -> None:
        super().__init__(403, f"This token lacks the scope {scope}.")
        self.scope = scope


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    issues = list(exc.errors())
    if any(i.get("type") == "json_invalid" for i in issues):
        return problem(400, "malformed_json", "The body is not valid JSON.")
    errors = {
        ".".join(str(p) for p in i.get("loc", ()))[:120]: str(i.get("msg", ""))[:200]
        for i in issues[:20]
    }
    detail = "; ".join(f"{k}: {v}" for k, v in errors.items())[:1000]
    return problem(422, "invalid_request", detail or "The request is not valid.", errors=errors)


class ProviderRoute(APIRoute):
    """Turns refusals into problem answers and logs every use of a known token."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = self.path_format

        async def answer(request: Request) -> Response:
            state = app_state(request)
            session = state.sessions()  # opening does no I/O; the first statement connects
            transaction = session.begin()
            request.state.provider_session = session
            committed = False
            try:
                response = await _answer_of(handler, request)
                committed = response.status_code < 400
            finally:
                # Before the answer leaves, and a refusal writes nothing, whatever the
                # service had done before refusing.
                end = transaction.commit if committed else transaction.rollback
                await anyio.to_thread.run_sync(
                    _end, session, end, limiter=state.enders, abandon_on_cancel=False
                )
            token_pk = getattr(request.state, "provider_token_pk", None)
            if token_pk is not None:
                use = _use_recorder(request, token_pk, route, response.status_code)
                response.background = _after(response.background, use)
            return response

        return answer


async def _answer_of(
    handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request
) -> Response:
    try:
        return await handler(request)
    except Refused as refused:
        status = STATUS_OF_KIND[refused.kind]
        return problem(status, refused.code, str(refused), errors=refused.errors)
    except _Unauthenticated as exc:
        return problem(401, "invalid_token", str(exc.detail), headers=exc.headers)
    except _MissingScope as exc:
        return problem(403, "insufficient_scope", str(exc.detail))
    except HTTPException as exc:
        return problem(exc.status_code, "http_error", str(exc.detail))
    except RequestValidationError as exc:
        return _validation_problem(exc)


def _end(session: Session, how: Callable[[], None]) -> None:
    try:
        how()
    finally:
        session.close()


def _provider_session(request: Request) -> Session:
    """The route's session, opened and ended by `ProviderRoute` around the whole call."""
    session: Session = request.state.provider_session
    return session


ProviderSession = Annotated[Session, Depends(_provider_session)]


def _after(first: BackgroundTask | None, then: BackgroundTask) -> BackgroundTask:
    if first is None:
        return then
    tasks = BackgroundTasks()
    tasks.add_task(first)
    tasks.add_task(then)
    return tasks


def _use_recorder(request: Request, token_pk: int, route: str, status: int) -> BackgroundTask:
    """Logs the use in a transaction of its own, so refused calls (rolled back) are logged."""
    sessions = app_state(request).sessions
    source, method = client_address(request), request.method

    def write(sessions: sessionmaker[Session]) -> None:
        with transaction(sessions) as session:
            provider_tokens.record_use(
                session, token_pk, method=method, route=route, status=status, source=source
            )

    return BackgroundTask(write, sessions)


class ScopeCheck:
    """The dependency that authenticates a provider token and requires one scope of it. The
    route table's test reads `scope` off it, so every route says which scope it needs."""

    def __init__(self, scope: str) -> None:
        assert scope in service.SCOPES, scope
        self.scope = scope

    def __call__(
        self,
        request: Request,
        session: ProviderSession,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Caller:
        scheme, _, secret = (authorization or "")[:300].partition(" ")
        token = provider_tokens.presented(session, secret) if scheme.lower() == "bearer" else None
        if token is None:
            raise _Unauthenticated()
        request.state.provider_token_pk = token.id
        if token.revoked_at is not None:
            log.info("provider_token_revoked_used", token_id=token.token_id)
            raise _Unauthenticated()
        if self.scope not in token.scopes:
            raise _MissingScope(self.scope)
        return Caller(token_id=token.token_id, tenant_id=token.tenant_id)


def _scope(name: str) -> Any:
    return Depends(ScopeCheck(name))


TenantsRead = Annotated[Caller, _scope("tenants:read")]
TenantsWrite = Annotated[Caller, _scope("tenants:write")]
PagesWrite = Annotated[Caller, _scope("pages:write")]
BudgetsWrite = Annotated[Caller, _scope("budgets:write")]
DoNotCallRead = Annotated[Caller, _scope("do_not_call:read")]
DoNotCallWrite = Annotated[Caller, _scope("do_not_call:write")]

TenantId = Annotated[int, Path(ge=1, le=2**31 - 1)]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
InternalNumber = Annotated[str, Path(min_length=1, max_length=20)]
CallNowId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Email = Annotated[str, Field(min_length=3, max_length=254)]

router = APIRouter(
    prefix=PREFIX,
    tags=["Provider API v1"],
    responses=COMMON_RESPONSES,
    route_class=ProviderRoute,
)


# ---------------------------------------------------------------------------- tenants


class TenantOut(BaseModel):
    id: int
    name: str
    product_line: str
    region: str
    timezone: str
    call_api_access: bool
    suspended: bool
    suspended_at: datetime | None
    created_at: datetime


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=120)
    product_line: Literal["pbx", "home"] | None = None
    region: str | None = Field(None, min_length=2, max_length=2, examples=["AU"])
    timezone: str | None = Field(None, min_length=1, max_length=64, examples=["Australia/Sydney"])
    call_api_access: bool | None = None


class TenantIn(TenantPatch):
    name: str = Field(min_length=1, max_length=120)


def _tenant_out(t: Tenant) -> TenantOut:
    return TenantOut(
        id=t.id,
        name=t.name,
        product_line=t.product_line,
        region=t.region,
        timezone=t.timezone,
        call_api_access=t.call_api_access,
        suspended=t.suspended_at is not None,
        suspended_at=t.suspended_at,
        created_at=t.created_at,
    )


def _tenant_fields(body: TenantPatch) -> service.TenantFields:
    return service.TenantFields(**body.model_dump(exclude_none=True))


@router.get("/tenants", response_model=list[TenantOut])
def list_tenants(
    caller: TenantsRead, session: ProviderSession, limit: Limit = 100, offset: Offset = 0
) -> list[TenantOut]:
    """The tenants this token reaches (one, for a token bound to a tenant)."""
    return [_tenant_out(t) for t in service.list_tenants(session, caller, limit, offset)]


@router.post("/tenants", response_model=TenantOut, status_code=201)
def create_tenant(body: TenantIn, caller: TenantsWrite, session: ProviderSession) -> TenantOut:
    """Create a tenant (platform tokens only)."""
    return _tenant_out(service.create_tenant(session, caller, _tenant_fields(body)))


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
def get_tenant(tenant_id: TenantId, caller: TenantsRead, session: ProviderSession) -> TenantOut:
    return _tenant_out(service.get_tenant(session, caller, tenant_id))


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
def update_tenant(
    tenant_id: TenantId, body: TenantPatch, caller: TenantsWrite, session: ProviderSession
) -> TenantOut:
    return _tenant_out(service.update_tenant(session, caller, tenant_id, _tenant_fields(body)))


@router.delete("/tenants/{tenant_id}", status_code=204)
def delete_tenant(tenant_id: TenantId, caller: TenantsWrite, session: ProviderSession) -> None:
    """Delete an empty tenant (platform tokens only); one with history answers 409."""
    service.delete_tenant(session, caller, tenant_id)


@router.post("/tenants/{tenant_id}/suspend", response_model=TenantOut)
def suspend_tenant(
    tenant_id: TenantId, caller: TenantsWrite, session: ProviderSession
) -> TenantOut:
    """Hide every page of the tenant and refuse new requests until it is resumed (requests
    already queued go on)."""
    return _tenant_out(service.set_tenant_suspended(session, caller, tenant_id, True))


@router.post("/tenants/{tenant_id}/resume", response_model=TenantOut)
def resume_tenant(tenant_id: TenantId, caller: TenantsWrite, session: ProviderSession) -> TenantOut:
    return _tenant_out(service.set_tenant_suspended(session, caller, tenant_id, False))


# ---------------------------------------------------------------------------- users


class UserOut(BaseModel):
    id: int
    tenant_id: int | None
    email: str
    role: str
    display_name: str
    is_active: bool
    # The owner's language for the portal, e-mails and phone prompts (the API stays English).
    language: str
    created_at: datetime


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(None, min_length=1, max_length=200)
    role: Literal["owner", "tenant_admin"] | None = None
    display_name: str | None = Field(None, max_length=80)
    is_active: bool | None = None
    language: str | None = Field(
        None, max_length=8, description="A shipped language's code: en, de, fr, es, it, pt, …"
    )


class UserIn(UserPatch):
    email: Email
    password: str = Field(min_length=1, max_length=200)


def _user_out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        tenant_id=u.tenant_id,
        email=u.email,
        role=u.role,
        display_name=u.display_name,
        is_active=u.is_active,
        language=u.language,
        created_at=u.created_at,
    )


@router.get("/tenants/{tenant_id}/users", response_model=list[UserOut])
def list_users(
    tenant_id: TenantId,
    caller: TenantsRead,
    session: ProviderSession,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[UserOut]:
    return [_user_out(u) for u in service.list_users(session, caller, tenant_id, limit, offset)]


@router.post("/tenants/{tenant_id}/users", response_model=UserOut, status_code=201)
def create_user(
    tenant_id: TenantId, body: UserIn, caller: TenantsWrite, session: ProviderSession
) -> UserOut:
    fields = service.UserFields(**body.model_dump(exclude_none=True))
    return _user_out(service.create_user(session, caller, tenant_id, fields))


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: UserId, caller: TenantsRead, session: ProviderSession) -> UserOut:
    return _user_out(service.get_user(session, caller, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: UserId, body: UserPatch, caller: TenantsWrite, session: ProviderSession
) -> UserOut:
    fields = service.UserFields(**body.model_dump(exclude_none=True))
    return _user_out(service.update_user(session, caller, user_id, fields))


@router.delete("/users/{user_id}", status_code=204)
def delete_user(user_id: UserId, caller: TenantsWrite, session: ProviderSession) -> None:
    """Delete a user with no history; otherwise 409 (set `is_active` to false instead)."""
    service.delete_user(session, caller, user_id)


# ---------------------------------------------------------------------------- extensions


class ExtensionOut(BaseModel):
    internal_number: str
    tenant_id: int
    external_number: str
    display_name: str
    owner_email: str | None
    callnow_id: str | None


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    internal_number: str = Field(min_length=1, max_length=20, examples=["003001"])
    external_number: str = Field(min_length=1, max_length=40, examples=["02 9037 4444"])
    display_name: str = Field("", max_length=80)
    owner_email: str | None = Field(None, min_length=3, max_length=254)


class ExtensionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_number: str | None = Field(None, min_length=1, max_length=40)
    display_name: str | None = Field(None, max_length=80)
    owner_email: str | None = Field(
        None, min_length=3, max_length=254, description="null takes the owner away"
    )


class BulkExtensionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extensions: list[ExtensionIn] = Field(max_length=service.MAX_BULK_EXTENSIONS)


class BulkReportOut(BaseModel):
    dry_run: bool
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    changes: dict[str, dict[str, list[str | None]]]


def _extension_out(e: Extension) -> ExtensionOut:
    return ExtensionOut(
        internal_number=e.internal_number,
        tenant_id=e.tenant_id,
        external_number=e.external_number,
        display_name=e.display_name,
        owner_email=e.owner.email if e.owner else None,
        callnow_id=e.profile.callnow_id if e.profile else None,
    )


def _extension_fields(body: ExtensionIn) -> service.ExtensionFields:
    return service.ExtensionFields(**body.model_dump())


@router.get("/tenants/{tenant_id}/extensions", response_model=list[ExtensionOut])
def list_extensions(
    tenant_id: TenantId,
    caller: TenantsRead,
    session: ProviderSession,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ExtensionOut]:
    found = service.list_extensions(session, caller, tenant_id, limit, offset)
    return [_extension_out(e) for e in found]


@router.post("/tenants/{tenant_id}/extensions", response_model=ExtensionOut, status_code=201)
def create_extension(
    tenant_id: TenantId, body: ExtensionIn, caller: TenantsWrite, session: ProviderSession
) -> ExtensionOut:
    fields = _extension_fields(body)
    return _extension_out(service.create_extension(session, caller, tenant_id, fields))


@router.post("/tenants/{tenant_id}/extensions/bulk", response_model=BulkReportOut)
def bulk_upsert_extensions(
    tenant_id: TenantId,
    body: BulkExtensionsIn,
    caller: TenantsWrite,
    session: ProviderSession,
    dry_run: Annotated[bool, Query(description="Report what would change; change nothing")] = False,
) -> BulkReportOut:
    """Create or update many extensions from the PBX's list, all or nothing. Running the same
    list again reports every extension as unchanged."""
    items = [_extension_fields(e) for e in body.extensions]
    report = service.bulk_upsert_extensions(session, caller, tenant_id, items, dry_run=dry_run)
    return BulkReportOut(**vars(report))


@router.get("/extensions/{internal_number}", response_model=ExtensionOut)
def get_extension(
    internal_number: InternalNumber, caller: TenantsRead, session: ProviderSession
) -> ExtensionOut:
    return _extension_out(service.get_extension(session, caller, internal_number))


@router.patch("/extensions/{internal_number}", response_model=ExtensionOut)
def update_extension(
    internal_number: InternalNumber,
    body: ExtensionPatch,
    caller: TenantsWrite,
    session: ProviderSession,
) -> ExtensionOut:
    changes = service.ExtensionChanges(
        external_number=body.external_number,
        display_name=body.display_name,
        owner_email=body.owner_email,
        clear_owner="owner_email" in body.model_fields_set and body.owner_email is None,
    )
    return _extension_out(service.update_extension(session, caller, internal_number, changes))


@router.delete("/extensions/{internal_number}", status_code=204)
def delete_extension(
    internal_number: InternalNumber, caller: TenantsWrite, session: ProviderSession
) -> None:
    """Delete an extension and its page; one with requests or charges answers 409."""
    service.delete_extension(session, caller, internal_number)


# ---------------------------------------------------------------------------- pages


class PageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    do_not_allow: bool | None = None
    confirmation_required: bool | None = None
    show_name: bool | None = None
    require_caller_name: bool | None = None
    image_validation: bool | None = None
    one_step_allowed: bool | None = None
    welcome_message: str | None = Field(None, max_length=WELCOME_MAX_CHARS)
    timezone: str | None = Field(None, max_length=64, description='"" for the tenant\'s zone')
    windows: list[WindowModel] | None = Field(None, max_length=21)


class PagePatch(PageSettings):
    callnow_id: str | None = Field(None, min_length=3, max_length=32)


class PageIn(PageSettings):
    internal_number: str = Field(min_length=1, max_length=20)
    callnow_id: str = Field(min_length=3, max_length=32, examples=["acme.sales"])


class PageOut(BaseModel):
    callnow_id: str
    internal_number: str
    tenant_id: int
    enabled: bool
    suspended: bool
    suspended_at: datetime | None
    do_not_allow: bool
    confirmation_required: bool
    show_name: bool
    require_caller_name: bool
    image_validation: bool
    one_step_allowed: bool
    welcome_message: str
    timezone: str
    windows: list[WindowModel]


def _page_out(p: Profile) -> PageOut:
    return PageOut(
        callnow_id=p.callnow_id,
        internal_number=p.extension.internal_number,
        tenant_id=p.extension.tenant_id,
        enabled=p.enabled,
        suspended=p.suspended_at is not None,
        suspended_at=p.suspended_at,
        do_not_allow=p.do_not_allow,
        confirmation_required=p.confirmation_required,
        show_name=p.show_name,
        require_caller_name=p.require_caller_name,
        image_validation=p.image_validation,
        one_step_allowed=p.one_step_allowed,
        welcome_message=p.welcome_message,
        timezone=str(profiles.timezone_of(p)),
        windows=windows_out(p),
    )


def _page_changes(body: PageSettings, callnow_id: str | None) -> page_settings.PageChanges:
    values = body.model_dump(exclude_none=True, exclude={"callnow_id", "internal_number"})
    windows = values.pop("windows", None)
    return page_settings.PageChanges(
        callnow_id=callnow_id,
        welcome_message=values.pop("welcome_message", None),
        timezone=values.pop("timezone", None),
        windows=None
        if windows is None
        else [page_settings.WindowFields(w["weekday"], w["start"], w["end"]) for w in windows],
        switches=values,
    )


@router.get("/tenants/{tenant_id}/pages", response_model=list[PageOut])
def list_pages(
    tenant_id: TenantId,
    caller: TenantsRead,
    session: ProviderSession,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PageOut]:
    return [_page_out(p) for p in service.list_pages(session, caller, tenant_id, limit, offset)]


@router.post("/pages", response_model=PageOut, status_code=201)
def create_page(body: PageIn, caller: PagesWrite, session: ProviderSession) -> PageOut:
    """Give an extension its CallNow page (its tenant needs Call API access)."""
    profile = service.create_page(
        session, caller, body.internal_number, body.callnow_id, _page_changes(body, None)
    )
    return _page_out(profile)


@router.get("/pages/{callnow_id}", response_model=PageOut)
def get_page(callnow_id: CallNowId, caller: TenantsRead, session: ProviderSession) -> PageOut:
    return _page_out(service.get_page(session, caller, callnow_id))


@router.patch("/pages/{callnow_id}", response_model=PageOut)
def update_page(
    callnow_id: CallNowId, body: PagePatch, caller: PagesWrite, session: ProviderSession
) -> PageOut:
    changes = _page_changes(body, body.callnow_id)
    return _page_out(service.update_page(session, caller, callnow_id, changes))


@router.delete("/pages/{callnow_id}", status_code=204)
def delete_page(callnow_id: CallNowId, caller: PagesWrite, session: ProviderSession) -> None:
    """Delete a page that never had a request; otherwise 409 (suspend it instead)."""
    service.delete_page(session, caller, callnow_id)


@router.post("/pages/{callnow_id}/suspend", response_model=PageOut)
def suspend_page(callnow_id: CallNowId, caller: PagesWrite, session: ProviderSession) -> PageOut:
    """Hide the page and refuse new requests (queued ones go on); its owner cannot undo this."""
    return _page_out(service.set_page_suspended(session, caller, callnow_id, True))


@router.post("/pages/{callnow_id}/resume", response_model=PageOut)
def resume_page(callnow_id: CallNowId, caller: PagesWrite, session: ProviderSession) -> PageOut:
    return _page_out(service.set_page_suspended(session, caller, callnow_id, False))


# ---------------------------------------------------------------------------- budgets

Minor = Annotated[int | None, Field(ge=0, le=service.MAX_LIMIT_MINOR)]


class BudgetIn(BaseModel):
    """Limits in minor units, tax included; null switches a limit off, an absent one stays."""

    model_config = ConfigDict(extra="forbid")
    daily_cap_minor: Minor = None
    prepaid_balance_minor: Minor = Field(None, description="What is left as of now")
    credit_limit_minor: Minor = None


class BudgetOut(BaseModel):
    daily_cap_minor: int | None
    prepaid_balance_minor: int | None
    credit_limit_minor: int | None
    balance_set_at: datetime | None


def _budget_out(limits: service.BudgetLimits) -> BudgetOut:
    return BudgetOut(**vars(limits))


def _limits(body: BudgetIn) -> dict[str, int | None]:
    return {name: getattr(body, name) for name in body.model_fields_set}


@router.get("/tenants/{tenant_id}/budget", response_model=BudgetOut)
def get_tenant_budget(
    tenant_id: TenantId, caller: TenantsRead, session: ProviderSession
) -> BudgetOut:
    target = service.BudgetTarget(tenant_id=tenant_id)
    return _budget_out(service.get_budget(session, caller, target))


@router.put("/tenants/{tenant_id}/budget", response_model=BudgetOut)
def set_tenant_budget(
    tenant_id: TenantId, body: BudgetIn, caller: BudgetsWrite, session: ProviderSession
) -> BudgetOut:
    target = service.BudgetTarget(tenant_id=tenant_id)
    return _budget_out(service.set_limits(session, caller, target, _limits(body)))


@router.get("/extensions/{internal_number}/budget", response_model=BudgetOut)
def get_extension_budget(
    internal_number: InternalNumber, caller: TenantsRead, session: ProviderSession
) -> BudgetOut:
    target = service.BudgetTarget(internal_number=internal_number)
    return _budget_out(service.get_budget(session, caller, target))


@router.put("/extensions/{internal_number}/budget", response_model=BudgetOut)
def set_extension_budget(
    internal_number: InternalNumber, body: BudgetIn, caller: BudgetsWrite, session: ProviderSession
) -> BudgetOut:
    target = service.BudgetTarget(internal_number=internal_number)
    return _budget_out(service.set_limits(session, caller, target, _limits(body)))


# ---------------------------------------------------------------------------- do-not-call


class DoNotCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=40, examples=["0412 345 678"])
    reason: str = Field("", max_length=200)


class DoNotCallOut(BaseModel):
    number: str
    reason: str
    added_at: datetime | None


@router.get("/do-not-call", response_model=list[DoNotCallOut])
def list_do_not_call(caller: DoNotCallRead, session: ProviderSession) -> list[DoNotCallOut]:
    """The platform's list (platform tokens only)."""
    return [
        DoNotCallOut(number=e.e164, reason=e.reason, added_at=e.added_at)
        for e in service.list_do_not_call(session, caller)
    ]


@router.post(
    "/do-not-call",
    response_model=DoNotCallOut,
    status_code=201,
    responses={200: {"model": DoNotCallOut, "description": "It was on the list already"}},
)
def add_do_not_call(
    request: Request,
    response: Response,
    body: DoNotCallIn,
    caller: DoNotCallWrite,
    session: ProviderSession,
) -> DoNotCallOut:
    """Put a number on the platform's list (national numbers read in the default region)."""
    region = app_state(request).settings.default_region
    e164, added = service.add_do_not_call(session, caller, body.number, body.reason, region)
    if not added:
        response.status_code = 200
    return DoNotCallOut(number=e164, reason=body.reason, added_at=None)


@router.delete("/do-not-call/{number}", status_code=204)
def remove_do_not_call(
    request: Request,
    number: Annotated[str, Path(min_length=1, max_length=40)],
    caller: DoNotCallWrite,
    session: ProviderSession,
) -> None:
    region = app_state(request).settings.default_region
    service.remove_do_not_call(session, caller, number, region)


def required_scope(route: APIRoute) -> str | None:
    """The scope a route's token needs, read off its dependencies (None: it needs none)."""
    for dependency in route.dependant.dependencies:
        if isinstance(dependency.call, ScopeCheck):
            return dependency.call.scope
    return None


# Each route says its scope in the OpenAPI document, from the one place that enforces it.
for _route in router.routes:
    if isinstance(_route, APIRoute) and (_needed := required_scope(_route)):
        _route.openapi_extra = {"x-required-scope": _needed}
        _route.description = f"{_route.description}\n\nScope: `{_needed}`.".strip()
