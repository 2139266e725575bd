"""Call API v1: an owner's programmatic twin of the portal and the public form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.orm import Session

from callnow.domain.page import MAX_RULES, WELCOME_MAX_CHARS
from callnow.domain.rules import InvalidRule
from callnow.domain.scheduling import SlotProblem
from callnow.services import page_settings, scheduling
from callnow.services.intake import Submission, submit
from callnow.store import accounts, db, profiles
from callnow.store import requests as request_store
from callnow.store.models import CallRequest, Profile, User
from callnow.web.context import AppState, EngineStatus, UnitOfWork, app_state, client_address

# The size limits in front of every route (LimitsMiddleware) answer these, as plain text.
_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}
# FastAPI's type for a route's extra OpenAPI responses.
Responses = dict[int | str, dict[str, Any]]
SIZE_LIMITS: Responses = {
    413: {"description": "The request body is too large", "content": _PLAIN_TEXT},
    414: {"description": "The address (its query string) is too long", "content": _PLAIN_TEXT},
}
router = APIRouter(prefix="/api/v1", tags=["Call API v1"], responses=SIZE_LIMITS)


class Problem(BaseModel):
    detail: str


class FieldIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """422: our own checks say why in a sentence (and, for a request, per field in `errors`);
    FastAPI's validation of the request's shape answers a list of field issues instead."""

    detail: str | list[FieldIssue]
    errors: dict[str, str] | None = None
    code: str | None = Field(
        None, description="Set where a refusal has a stable code (a booked time's: `slot_…`)."
    )


class SlotRefused(BaseModel):
    """409: the page's state refuses the booked time (booking off, or the slot full)."""

    detail: str
    code: Literal["booking_not_offered", "slot_full"]
    errors: dict[str, str]


class WindowModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start: str = Field(pattern=r"^\d{2}:\d{2}$", examples=["09:00"])
    end: str = Field(
        pattern=r"^\d{2}:\d{2}$",
        examples=["17:00"],
        description="At or before start: runs past midnight",
    )


class ProfileOut(BaseModel):
    callnow_id: str
    enabled: bool
    do_not_allow: bool
    confirmation_required: bool
    show_name: bool
    require_caller_name: bool
    image_validation: bool
    one_step_allowed: bool
    welcome_message: str
    timezone: str
    windows: list[WindowModel]
    extension: str
    external_number: str


class ProfileUpdate(BaseModel):
    """Only the fields sent change. The schema offers no null: a null is refused (422)."""

    model_config = ConfigDict(extra="forbid")
    callnow_id: str | SkipJsonSchema[None] = Field(
        None,
        min_length=3,
        max_length=32,
        description="A new CallNow ID renames the page: the old ID keeps redirecting (301) "
        "to the new one and no other page may take it for at least a year.",
    )
    enabled: bool | SkipJsonSchema[None] = None
    do_not_allow: bool | SkipJsonSchema[None] = None
    confirmation_required: bool | SkipJsonSchema[None] = None
    show_name: bool | SkipJsonSchema[None] = None
    require_caller_name: bool | SkipJsonSchema[None] = None
    image_validation: bool | SkipJsonSchema[None] = None
    one_step_allowed: bool | SkipJsonSchema[None] = None
    welcome_message: str | SkipJsonSchema[None] = Field(None, max_length=WELCOME_MAX_CHARS)
    windows: list[WindowModel] | SkipJsonSchema[None] = Field(None, max_length=21)
    display_name: str | SkipJsonSchema[None] = Field(
        None,
        max_length=80,
        description="The name the page shows when show_name is on; empty shows none.",
    )


class RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "confirm", "reject"]
    number_match: Literal["exact", "prefix", "scope"] | None = None
    number_value: str | None = Field(
        None,
        max_length=40,
        description="E.164 digits, +prefix or national prefix; or national/international for scope",
    )
    name_match: Literal["contains", "exact"] | None = None
    name_value: str | None = Field(None, max_length=60)


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    number: str = Field(max_length=100)
    scheduled_for: AwareDatetime | None = Field(
        None,
        examples=["2026-12-07T09:15:00+11:00"],
        description="Book a slot instead of calling now: ISO 8601 with an offset, the start of "
        "a 15-minute slot on the page's clock (minute 00, 15, 30 or 45, no seconds) that lies "
        "wholly inside the page's hours, within the days ahead its owner allows, in a slot not "
        "yet full, on a page that offers booking. Refused with a `code` otherwise.",
    )


class RequestEventOut(BaseModel):
    at: datetime
    state: str
    reason: str


class RequestOut(BaseModel):
    token: str
    callnow_id: str
    caller_name: str | None
    number: str
    number_typed: str
    channel: str
    state: str
    decision: str
    reason: str
    created_at: datetime
    events: list[RequestEventOut]
    message: str | None = Field(
        None, description="The visitor's message, left after the call could not happen."
    )
    message_at: datetime | None = None
    scheduled_for: datetime | None = Field(
        None,
        description="A booked request's slot: it waits until then, and the owner's page and "
        "rules are checked again before it is dialled. Null for a request made for now.",
    )


class TrunkHealth(BaseModel):
    name: str
    registered: bool
    last_error: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    # The call engine this service runs: `running`; `restarting` after it died (requests wait,
    # queued); `elsewhere` when this process runs the web only (`engine.enabled = false`). An
    # engine in this process that stopped claiming answers 503 instead: nothing restarts it.
    engine: EngineStatus
    # Trunks with `registration` on, as the engine in this process sees them: an unregistered
    # trunk does not make the service unhealthy (other trunks may carry the calls).
    trunks: list[TrunkHealth] = []


def api_user(
    request: Request,
    session: UnitOfWork,
    authorization: Annotated[str | None, Header(max_length=300)] = None,
) -> User:
    scheme, _, credential = (authorization or "").partition(" ")
    key = accounts.api_key_owner(session, credential) if scheme.lower() == "bearer" else None
    if key is None or not key.user.is_active:
        raise HTTPException(
            401,
            "A valid API key is needed: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.api_key_id = key.id
    return key.user


UserDep = Annotated[User, Depends(api_user)]
SessionDep = UnitOfWork
StateDep = Annotated[AppState, Depends(app_state)]
NOT_FOUND: Responses = {404: {"model": Problem}, 401: {"model": Problem}}
BAD_BODY: Responses = {400: {"model": Problem, "description": "The body is not valid JSON"}}


def _own(session: Session, user: User, callnow_id: str) -> Profile:
    """The caller's own profile, or 404: another owner's profile looks the same as none."""
    for profile in profiles.owned_by(session, user.id):
        if profile.callnow_id == callnow_id.lower():
            return profile
    raise HTTPException(404, "No such profile among yours.")


def windows_out(profile: Profile) -> list[WindowModel]:
    """The page's hours as the APIs show them."""
    return [
        WindowModel(
            weekday=w.weekday,
            start=f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
            end=f"{w.end_minute // 60:02d}:{w.end_minute % 60:02d}",
        )
        for w in profile.windows
    ]


def _profile_out(profile: Profile) -> ProfileOut:
    return ProfileOut(
        callnow_id=profile.callnow_id,
        enabled=profile.enabled,
        do_not_allow=profile.do_not_allow,
        confirmation_required=profile.confirmation_required,
        show_name=profile.show_name,
        require_caller_name=profile.require_caller_name,
        image_validation=profile.image_validation,
        one_step_allowed=profile.one_step_allowed,
        welcome_message=profile.welcome_message,
        timezone=str(profiles.timezone_of(profile)),
        windows=windows_out(profile),
        extension=profile.extension.internal_number,
        external_number=profile.extension.external_number,
    )


def _request_out(r: CallRequest) -> RequestOut:
    return RequestOut(
        token=r.token,
        callnow_id=r.profile.callnow_id,
        caller_name=r.caller_name,
        number=r.number_e164,
        number_typed=r.number_typed,
        channel=r.channel,
        state=r.state,
        decision=r.decision,
        reason=r.reason,
        created_at=r.created_at,
        events=[RequestEventOut(at=e.at, state=e.state, reason=e.reason) for e in r.events],
        message=r.message,
        message_at=r.message_at,
        scheduled_for=r.scheduled_for,
    )


@router.get("/health", response_model=Health, responses={503: {"model": Problem}})
def health(session: SessionDep, state: StateDep) -> Health:
    try:
        db.ping(session)
    except Exception as exc:  # any database failure is "not healthy", said plainly
        raise HTTPException(503, "database unavailable") from exc
    engine = state.engine_status()
    if engine == "draining":
        # A load balancer takes this process out of rotation while its calls end.
        raise HTTPException(503, "draining: the call engine is stopping; calls in progress end")
    if engine == "stopped":
        # Requests would still be accepted, and wait for nobody: the service needs a restart.
        raise HTTPException(503, "the call engine has stopped; restart the service")
    trunks = [
        TrunkHealth(name=t.name, registered=t.registered, last_error=t.last_error)
        for t in state.trunk_registrations()
    ]
    return Health(status="ok", database="ok", engine=engine, trunks=trunks)


@router.get("/profiles", response_model=list[ProfileOut], responses={401: {"model": Problem}})
def list_profiles(user: UserDep, session: SessionDep) -> list[ProfileOut]:
    return [_profile_out(p) for p in profiles.owned_by(session, user.id)]


@router.get("/profiles/{callnow_id}", response_model=ProfileOut, responses=NOT_FOUND)
def get_profile(
    callnow_id: Annotated[str, Field(max_length=64)], user: UserDep, session: SessionDep
) -> ProfileOut:
    return _profile_out(_own(session, user, callnow_id))


@router.patch(
    "/profiles/{callnow_id}",
    response_model=ProfileOut,
    responses={**NOT_FOUND, **BAD_BODY, 409: {"model": Problem}, 422: {"model": Invalid}},
)
def update_profile(
    callnow_id: str, changes: ProfileUpdate, user: UserDep, session: SessionDep
) -> ProfileOut:
    profile = _own(session, user, callnow_id)
    values = changes.model_dump(exclude_unset=True)
    nulls = [name for name, value in values.items() if value is None]
    if nulls:
        raise HTTPException(422, f"{nulls[0]} may not be null")
    windows = values.pop("windows", None)
    wanted = page_settings.PageChanges(
        callnow_id=values.pop("callnow_id", None),
        welcome_message=values.pop("welcome_message", None),
        display_name=values.pop("display_name", None),
        windows=None
        if windows is None
        else [page_settings.WindowFields(w["weekday"], w["start"], w["end"]) for w in windows],
        switches=values,
    )
    try:
        page_settings.change_page(
            session,
            profile,
            wanted,
            actor=user,
            via="api",
            details=changes.model_dump(exclude_unset=True),
        )
    except page_settings.InvalidChanges as invalid:
        raise HTTPException(409 if invalid.taken else 422, str(invalid)) from invalid
    return _profile_out(profile)


@router.get("/profiles/{callnow_id}/rules", response_model=list[RuleModel], responses=NOT_FOUND)
def get_rules(callnow_id: str, user: UserDep, session: SessionDep) -> list[RuleModel]:
    profile = _own(session, user, callnow_id)
    return [
        RuleModel(
            action=r.action,
            number_match=r.number_match,
            number_value=r.number_value,
            name_match=r.name_match,
            name_value=r.name_value,
        )
        for r in profile.rules
    ]


@router.put(
    "/profiles/{callnow_id}/rules",
    response_model=list[RuleModel],
    responses={**NOT_FOUND, **BAD_BODY, 422: {"model": Invalid}},
)
def put_rules(
    callnow_id: str,
    rules: Annotated[list[RuleModel], Field(max_length=MAX_RULES)],
    user: UserDep,
    session: SessionDep,
) -> list[RuleModel]:
    profile = _own(session, user, callnow_id)
    try:
        domain_rules = [
            page_settings.parse_rule(
                profile,
                page_settings.RuleFields(
                    r.action,
                    r.number_match or "",
                    r.number_value or "",
                    r.name_match or "",
                    r.name_value or "",
                ),
            )
            for r in rules
        ]
        page_settings.set_rules(
            session, profile, domain_rules, actor=user, via="api", action="rules.replace"
        )
    except InvalidRule as exc:
        raise HTTPException(422, str(exc)) from exc
    return get_rules(callnow_id, user, session)


@router.get("/profiles/{callnow_id}/requests", response_model=list[RequestOut], responses=NOT_FOUND)
def list_requests(
    callnow_id: str,
    user: UserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RequestOut]:
    profile = _own(session, user, callnow_id)
    items = request_store.recent_for_profiles(session, [profile.id], limit=limit, offset=offset)
    return [_request_out(r) for r in items]


@router.post(
    "/profiles/{callnow_id}/requests",
    response_model=RequestOut,
    status_code=201,
    responses={
        **NOT_FOUND,
        **BAD_BODY,
        200: {"model": RequestOut},
        409: {"model": SlotRefused},
        422: {"model": Invalid},
        429: {"model": Problem},
    },
)
def create_request(
    request: Request,
    response: Response,
    callnow_id: str,
    body: RequestIn,
    user: UserDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(max_length=80, pattern=r"^[\x21-\x7e]+$")] = None,
) -> RequestOut | JSONResponse:
    profile = _own(session, user, callnow_id)
    api_key_id: int = request.state.api_key_id
    if idempotency_key:
        earlier = request_store.by_idempotency_key(session, api_key_id, idempotency_key)
        if earlier is not None:
            if earlier.profile_id != profile.id:
                raise HTTPException(422, "That Idempotency-Key was used for another profile.")
            response.status_code = 200
            return _request_out(earlier)
    submission = Submission(
        name=body.name,
        number=body.number,
        source_address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:256],
        channel="api",
    )
    now = datetime.now(UTC)
    scheduled_for = None
    if body.scheduled_for is not None:
        problem = scheduling.slot_problem(session, profile, body.scheduled_for, now)
        if problem is not None:
            return _slot_refused(problem, profile)
        scheduled_for = body.scheduled_for.astimezone(UTC)
    result = submit(
        session,
        profile,
        submission,
        now,
        app_state(request).safeguards,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        scheduled_for=scheduled_for,
    )
    if result.throttled:
        return JSONResponse(
            {"detail": "Too many requests; try again later."},
            status_code=429,
            headers={"Retry-After": "60"},
        )
    if result.errors:
        return JSONResponse(
            {"detail": "; ".join(result.errors.values()), "errors": result.errors}, status_code=422
        )
    assert result.request is not None
    if result.existing:
        response.status_code = 200
    return _request_out(result.request)


# Why a booked time is refused: (status, stable code, what to say). The page's state answers
# 409 (booking off, the slot taken: another time or later may do); the time itself 422.
_SLOT_REFUSALS: dict[SlotProblem, tuple[int, str, str]] = {
    SlotProblem.NOT_OFFERED: (
        409,
        "booking_not_offered",
        "This page does not offer booking a time (its owner turned booking off); "
        "send the request without scheduled_for to be called now.",
    ),
    SlotProblem.NOT_A_SLOT: (
        422,
        "slot_not_on_grid",
        "scheduled_for must start a 15-minute slot on the page's clock ({zone}): "
        "minute 00, 15, 30 or 45, no seconds.",
    ),
    SlotProblem.PAST: (422, "slot_in_past", "scheduled_for has already passed."),
    SlotProblem.TOO_FAR: (
        422,
        "slot_too_far_ahead",
        "scheduled_for is more than {days} ahead, the most this page allows.",
    ),
    SlotProblem.OUTSIDE_HOURS: (
        422,
        "slot_outside_hours",
        "scheduled_for is outside the page's hours: the whole 15-minute slot must lie inside "
        "one of its windows ({zone}).",
    ),
    SlotProblem.FULL: (
        409,
        "slot_full",
        "That slot already has {per_slot}, as many as this page takes per slot; choose another.",
    ),
}


def _counted(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _slot_refused(problem: SlotProblem, profile: Profile) -> JSONResponse:
    status, code, text = _SLOT_REFUSALS[problem]
    policy = scheduling.policy_of(profile)
    detail = text.format(
        zone=profiles.timezone_of(profile).key,
        days=_counted(policy.days_ahead, "day"),
        per_slot=_counted(policy.per_slot, "booking"),
    )
    return JSONResponse(
        {"detail": detail, "code": code, "errors": {"scheduled_for": detail}}, status_code=status
    )


@router.get("/requests/{token}", response_model=RequestOut, responses=NOT_FOUND)
def get_request(
    token: Annotated[str, Field(max_length=64)], user: UserDep, session: SessionDep
) -> RequestOut:
    call_request = request_store.by_token(session, token)
    owned = {p.id for p in profiles.owned_by(session, user.id)}
    if call_request is None or call_request.profile_id not in owned:
        raise HTTPException(404, "No such request among yours.")
    return _request_out(call_request)
