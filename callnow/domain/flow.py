"""The callback flow as a sans-IO state machine: events in, commands out.

`CallbackFlow.handle(event)` returns the commands the engine must execute, in order. Nothing here
touches a socket, a clock or a database, so every branch is testable in microseconds (in the
style of h11 and wsproto).

Paths:

- confirmation required: ring the owner → the owner answers → confirm prompt → "1" dials the
  visitor, "2" declines; silence replays the prompt up to `max_prompt_plays` times.
- auto-accepted (by rule or setting) or accepted on the web: ring the owner → the owner answers →
  a short whisper plays *while* the visitor is dialled (see `AcceptanceMode`).
- both legs answered → bridge, with a max-duration timer; either hang-up ends the other leg.
- the visitor cannot be reached → the owner, still on the line, hears a short notice
  ("Sorry, we could not reach Mary.") before the flow hangs up.

The flow never waits without a timer running: an adapter that goes silent (a lost
`PromptFinished`, a ring that never ends) cannot keep a callback, or an owner's line, up for
ever. `prompt_max_s` bounds the prompts the flow waits on, as if they had finished.

Decisions where the brief was silent (also in the engineer's report):

- The owner hanging up while the confirm prompt is playing or awaiting a key is a *decline*
  (`owner_declined`, reason `owner_hung_up_during_prompt`): the owner answered, heard who is
  asking and hung up, which is the phone's universal "no". The distinct reason lets policy
  exempt it from the decline cooldown if that proves too strict. A 603/"rejected" while the
  owner's phone rings is a decline too; busy, no answer and failures are `owner_unreachable`.
- The owner hanging up after accepting but before the visitor answers cancels the visitor
  leg and ends the request as `completed` (reason `owner_hung_up_before_connect`): the request
  state machine (`request_state.py`) allows no `cancelled` once the visitor is being called.
- A `Cancel` from the web ends every live leg. While the owner is being called the request
  becomes `cancelled`; once the visitor is being called or connected it becomes `completed`
  with the cancel's reason, for the same reason as above (and a bridged call did happen).
- An owner's call the PBX diverted (a 181, or an answer with Diversion or History-Info
  causes; `OwnerDiverted`) is not answered: hung up at once, no prompt, `owner_unreachable`
  with reason `owner_voicemail`, recorded as no answer. Whether a divert counts is the
  operator's setting, applied before the event reaches the flow.
- A leg that ends without the remote hanging up (`by_remote=False`: session timer, media timeout)
  before the bridge makes the request `failed`; once bridged, the call is `completed`.
- A leg is considered ended as soon as the flow commands its hang-up; its `RecordLeg` follows
  immediately, and the adapter's later `LegEnded` for it is ignored.
- Keys count while the prompt is still playing (barge-in): owners who know the prompt need not
  sit through it. Keys other than 1 and 2 are ignored and do not restart the digit wait.
- Finishing is always: cancel running timers, hang up and record every live leg, report the
  terminal request state, `Finish`. So the store sees the records before the final state.
- `Abort` (engine trouble) fails the request, unless the outcome was already decided.
- An owner's phone that answers busy (486, 600) is on another call: `OwnerBusyFor` tells the
  engine to ring that owner for no other callback for `owner_busy_hold_s` (the classic
  callback "retry time"), so the owner's queued requests wait instead of each meeting busy
  within milliseconds. It comes before the terminal state, in the same unit of writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callnow.domain.calls import FailureCause, LegRole
from callnow.domain.prompt_text import confirm_prompt, unreachable_notice, whisper_prompt
from callnow.domain.request_state import RequestState
from callnow.i18n import use_language


class AcceptanceMode(StrEnum):
    # The owner must press 1 on the keypad after hearing the confirm prompt.
    CONFIRM = "confirm"
    # A rule or the owner's setting accepted the request: whisper, dial the visitor at once.
    AUTO = "auto"
    # The owner already accepted in the web portal: same as AUTO on the phone.
    WEB = "web"


class PromptKind(StrEnum):
    CONFIRM = "confirm"
    WHISPER = "whisper"
    # Tells the owner the visitor could not be reached, before hanging up.
    NOTICE = "notice"


class DigitSource(StrEnum):
    RFC4733 = "rfc4733"
    SIP_INFO = "sip_info"


class TimerName(StrEnum):
    OWNER_RING = "owner_ring"
    VISITOR_RING = "requester_ring"
    DIGIT_WAIT = "digit_wait"
    MAX_DURATION = "max_duration"
    # Stands in for a PromptFinished that never came.
    PROMPT_LIMIT = "prompt_limit"


class FlowState(StrEnum):
    IDLE = "idle"
    CALLING_OWNER = "calling_owner"
    ASKING_OWNER = "asking_owner"
    CALLING_VISITOR = "calling_requester"
    CONNECTED = "connected"
    TELLING_OWNER = "telling_owner"
    FINISHED = "finished"


class Reason(StrEnum):
    """Machine-readable reasons attached to state changes and hang-ups."""

    DIALLING_OWNER = "dialling_owner"
    OWNER_PRESSED_1 = "owner_pressed_1"
    AUTO_ACCEPTED = "auto_accepted"
    ACCEPTED_ON_WEB = "accepted_on_web"
    OWNER_PRESSED_2 = "owner_pressed_2"
    OWNER_REJECTED = "owner_rejected"
    OWNER_HUNG_UP_DURING_PROMPT = "owner_hung_up_during_prompt"
    OWNER_BUSY = "owner_busy"
    OWNER_NO_ANSWER = "owner_no_answer"
    OWNER_FAILED = "owner_failed"
    # The owner's PBX diverted the call (to voicemail, most often): see `OwnerDiverted`.
    OWNER_VOICEMAIL = "owner_voicemail"
    PROMPT_UNANSWERED = "prompt_unanswered"
    OWNER_HUNG_UP_BEFORE_CONNECT = "owner_hung_up_before_connect"
    VISITOR_BUSY = "requester_busy"
    VISITOR_NO_ANSWER = "requester_no_answer"
    VISITOR_FAILED = "requester_failed"
    VISITOR_REJECTED = "requester_rejected"
    BRIDGED = "bridged"
    OWNER_HUNG_UP = "owner_hung_up"
    VISITOR_HUNG_UP = "requester_hung_up"
    OWNER_LEG_DROPPED = "owner_leg_dropped"
    VISITOR_LEG_DROPPED = "requester_leg_dropped"
    MAX_DURATION_REACHED = "max_duration_reached"


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFacts:
    """What the flow needs to know about one queued request."""

    request_ref: str
    visitor_e164: str
    owner_internal_number: str
    owner_external_e164: str
    acceptance: AcceptanceMode
    caller_name: str | None = None
    # Region whose national format the owner hears the caller's number in.
    region: str = "AU"
    # Billing's hook, e.g. "a local call, 12 cents"; read in the confirm prompt when given,
    # so it is already in the owner's language.
    cost_phrase: str | None = None
    # The owner's language (a shipped code): what the prompts say and the voice saying it.
    language: str = "en"


@dataclass(frozen=True)
class FlowLimits:
    """Timeouts in seconds (floats so engine tests can use milliseconds)."""

    owner_ring_s: float = 30
    visitor_ring_s: float = 45
    digit_wait_s: float = 6
    max_call_duration_s: float = 3600
    # From the owner's remaining budget (A2Billing-style max duration from credit), if limited.
    budget_max_duration_s: float | None = None
    max_prompt_plays: int = 3
    # Longest a confirm prompt or notice may play, should the adapter never report its end.
    prompt_max_s: float = 30
    # After the owner's phone answered busy, how long no other callback rings them (0: none).
    # The engine sets it from `engine.owner_busy_hold_s`.
    owner_busy_hold_s: float = 0

    def __post_init__(self) -> None:
        timeouts = (self.owner_ring_s, self.visitor_ring_s, self.digit_wait_s)
        if min(*timeouts, self.prompt_max_s, self.max_call_duration_s) <= 0:
            raise ValueError("timeouts must be positive")
        if self.budget_max_duration_s is not None and self.budget_max_duration_s <= 0:
            raise ValueError("a request without budget must not reach the flow")
        if self.max_prompt_plays < 1:
            raise ValueError("the prompt must be played at least once")
        if self.owner_busy_hold_s < 0:
            raise ValueError("the busy owner's hold cannot be negative")

    @property
    def max_duration_s(self) -> float:
        if self.budget_max_duration_s is None:
            return self.max_call_duration_s
        return min(self.max_call_duration_s, self.budget_max_duration_s)


# -- events (in) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class LegRinging:
    role: LegRole


@dataclass(frozen=True)
class LegAnswered:
    role: LegRole


@dataclass(frozen=True)
class LegFailed:
    """A dialled leg ended without being answered."""

    role: LegRole
    cause: FailureCause
    sip_code: int | None = None


@dataclass(frozen=True)
class OwnerDiverted:
    """The owner's PBX showed that it sent the call elsewhere, to voicemail most often
    (`callnow.domain.diversion`): the owner leg counts as not answered, even when the
    voicemail box answered. `sip_code` is the response that showed it (181, or the 2xx)."""

    sip_code: int | None = None


@dataclass(frozen=True)
class LegEnded:
    """An answered leg ended. `by_remote` is False when the network dropped it (timeouts)."""

    role: LegRole
    by_remote: bool = True


@dataclass(frozen=True)
class Digit:
    """A key the owner pressed. Only the owner is ever asked for keys."""

    digit: str
    source: DigitSource = DigitSource.RFC4733


@dataclass(frozen=True)
class PromptFinished:
    pass


@dataclass(frozen=True)
class TimerFired:
    name: str


@dataclass(frozen=True)
class Cancel:
    """The visitor or the owner cancelled from the web."""

    reason: str


@dataclass(frozen=True)
class Abort:
    """The engine cannot go on (an adapter error, shutdown): hang up everything, `failed`."""

    reason: str


Event = (
    Start
    | LegRinging
    | LegAnswered
    | LegFailed
    | OwnerDiverted
    | LegEnded
    | Digit
    | PromptFinished
    | TimerFired
    | Cancel
    | Abort
)


# -- commands (out) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DialOwner:
    number: str


@dataclass(frozen=True)
class DialVisitor:
    number: str
    # The owner's external number, so the visitor sees who is calling back.
    caller_id: str


@dataclass(frozen=True)
class PlayPrompt:
    """Play `text`, written in `language`, to the owner leg."""

    kind: PromptKind
    text: str
    language: str = "en"


@dataclass(frozen=True)
class StopPrompt:
    pass


@dataclass(frozen=True)
class Bridge:
    pass


@dataclass(frozen=True)
class HangupLeg:
    role: LegRole
    reason: str


@dataclass(frozen=True)
class StartTimer:
    """Start (or restart) the timer `name`; it comes back as `TimerFired(name)`."""

    name: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class RecordLeg:
    """The leg has ended: write its call record. Cause and code are None unless it failed."""

    role: LegRole
    failure_cause: FailureCause | None = None
    sip_code: int | None = None


@dataclass(frozen=True)
class OwnerBusyFor:
    """The owner's phone answered busy: ring them for no other callback for `seconds`, counted
    from now (the engine's clock)."""

    seconds: float


@dataclass(frozen=True)
class RequestStateChanged:
    state: RequestState
    reason: str


@dataclass(frozen=True)
class Outcome:
    state: RequestState
    reason: str


@dataclass(frozen=True)
class Finish:
    """Always the last command; the flow ignores every event after it."""

    outcome: Outcome


Command = (
    DialOwner
    | DialVisitor
    | PlayPrompt
    | StopPrompt
    | Bridge
    | HangupLeg
    | StartTimer
    | CancelTimer
    | RecordLeg
    | OwnerBusyFor
    | RequestStateChanged
    | Finish
)


# -- the flow -----------------------------------------------------------------------------------


class _Leg(StrEnum):
    NOT_DIALLED = "not_dialled"
    DIALLING = "dialling"
    ANSWERED = "answered"
    ENDED = "ended"


_LIVE = (_Leg.DIALLING, _Leg.ANSWERED)

_RING_TIMER = {LegRole.OWNER: TimerName.OWNER_RING, LegRole.VISITOR: TimerName.VISITOR_RING}

_OWNER_FAILURE = {
    FailureCause.BUSY: (RequestState.OWNER_UNREACHABLE, Reason.OWNER_BUSY),
    FailureCause.NO_ANSWER: (RequestState.OWNER_UNREACHABLE, Reason.OWNER_NO_ANSWER),
    FailureCause.FAILED: (RequestState.OWNER_UNREACHABLE, Reason.OWNER_FAILED),
    FailureCause.REJECTED: (RequestState.OWNER_DECLINED, Reason.OWNER_REJECTED),
}

_VISITOR_FAILURE = {
    FailureCause.BUSY: Reason.VISITOR_BUSY,
    FailureCause.NO_ANSWER: Reason.VISITOR_NO_ANSWER,
    FailureCause.FAILED: Reason.VISITOR_FAILED,
    FailureCause.REJECTED: Reason.VISITOR_REJECTED,
}

_HUNG_UP = {LegRole.OWNER: Reason.OWNER_HUNG_UP, LegRole.VISITOR: Reason.VISITOR_HUNG_UP}
_DROPPED = {
    LegRole.OWNER: Reason.OWNER_LEG_DROPPED,
    LegRole.VISITOR: Reason.VISITOR_LEG_DROPPED,
}

_ACCEPT_REASON = {
    AcceptanceMode.CONFIRM: Reason.OWNER_PRESSED_1,
    AcceptanceMode.AUTO: Reason.AUTO_ACCEPTED,
    AcceptanceMode.WEB: Reason.ACCEPTED_ON_WEB,
}


class CallbackFlow:
    """One callback request, from dialling the owner to the last call record."""

    def __init__(self, facts: RequestFacts, limits: FlowLimits | None = None) -> None:
        self.facts = facts
        self.limits = limits or FlowLimits()
        self._state = FlowState.IDLE
        self._request_state = RequestState.QUEUED
        self._outcome: Outcome | None = None
        self._legs = {role: _Leg.NOT_DIALLED for role in LegRole}
        self._timers: set[str] = set()
        self._prompt_playing = False
        self._prompt_plays = 0
        # Decided, but the owner is still hearing the notice: applied when that ends.
        self._pending: Outcome | None = None

    @property
    def state(self) -> FlowState:
        return self._state

    @property
    def request_state(self) -> RequestState:
        return self._request_state

    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    @property
    def finished(self) -> bool:
        return self._state is FlowState.FINISHED

    def handle(self, event: Event) -> list[Command]:
        """Feed one event; returns the commands to execute, in order. Never raises for an event
        that does not fit the current state: such events are ignored."""
        if self.finished:
            return []
        out: list[Command] = []
        match event:
            case Start():
                self._on_start(out)
            case LegAnswered(role=role):
                self._on_answered(role, out)
            case LegFailed(role=role, cause=cause, sip_code=code):
                self._on_failed(role, cause, code, out)
            case OwnerDiverted(sip_code=code):
                self._on_owner_diverted(code, out)
            case LegEnded(role=role, by_remote=by_remote):
                self._on_ended(role, by_remote, out)
            case Digit(digit=digit):
                self._on_digit(digit, out)
            case PromptFinished():
                self._on_prompt_finished(out)
            case TimerFired(name=name):
                self._on_timer(name, out)
            case Cancel(reason=reason):
                self._on_cancel(reason, out)
            case Abort() if self._pending is not None:
                self._finish_pending(out)  # the outcome was decided before the trouble
            case Abort(reason=reason):
                self._finish(RequestState.FAILED, reason, out)
            case LegRinging():
                pass  # Only the engine's timestamps care; the flow waits for the answer.
        return out

    # -- event handlers --

    def _on_start(self, out: list[Command]) -> None:
        if self._state is not FlowState.IDLE:
            return
        self._state = FlowState.CALLING_OWNER
        self._legs[LegRole.OWNER] = _Leg.DIALLING
        self._report(RequestState.CALLING_OWNER, Reason.DIALLING_OWNER, out)
        self._start_timer(TimerName.OWNER_RING, self.limits.owner_ring_s, out)
        out.append(DialOwner(self.facts.owner_internal_number))

    def _on_answered(self, role: LegRole, out: list[Command]) -> None:
        if self._legs[role] is not _Leg.DIALLING:
            return
        self._legs[role] = _Leg.ANSWERED
        self._cancel_timer(_RING_TIMER[role], out)
        if role is LegRole.OWNER:
            self._on_owner_answered(out)
        else:
            self._connect(out)

    def _on_owner_answered(self, out: list[Command]) -> None:
        if self.facts.acceptance is AcceptanceMode.CONFIRM:
            self._state = FlowState.ASKING_OWNER
            self._play(PromptKind.CONFIRM, out)
            return
        # Dial while the whisper plays: it lasts a second or two, less than the trunk's
        # post-dial delay, so waiting for it would only add latency for the visitor.
        self._play(PromptKind.WHISPER, out)
        self._dial_visitor(out)

    def _on_failed(
        self, role: LegRole, cause: FailureCause, code: int | None, out: list[Command]
    ) -> None:
        if self._legs[role] is _Leg.ANSWERED:
            # A "failure" after the answer is a dropped leg; handle it like one.
            self._on_ended(role, by_remote=False, out=out)
            return
        if self._legs[role] is not _Leg.DIALLING:
            return
        self._leg_gone(role, out, cause=cause, sip_code=code)
        if role is LegRole.OWNER:
            state, reason = _OWNER_FAILURE[cause]
            if cause is FailureCause.BUSY and self.limits.owner_busy_hold_s > 0:
                # On another call: ringing again at once would only meet busy again.
                out.append(OwnerBusyFor(self.limits.owner_busy_hold_s))
            self._finish(state, reason, out)
        else:
            self._visitor_unreachable(_VISITOR_FAILURE[cause], out)

    def _on_owner_diverted(self, code: int | None, out: list[Command]) -> None:
        """Not answered, whatever the PBX's voicemail did: hang up at once (CANCEL while it
        rings, BYE if the box answered), before any prompt, and end unreachable."""
        if self._legs[LegRole.OWNER] is not _Leg.DIALLING:
            return  # answered as a phone already (or gone): too late to call it a divert
        out.append(HangupLeg(LegRole.OWNER, Reason.OWNER_VOICEMAIL))
        self._leg_gone(LegRole.OWNER, out, cause=FailureCause.NO_ANSWER, sip_code=code)
        self._finish(RequestState.OWNER_UNREACHABLE, Reason.OWNER_VOICEMAIL, out)

    def _on_ended(self, role: LegRole, by_remote: bool, out: list[Command]) -> None:
        if self._legs[role] is _Leg.DIALLING:
            # Ended without an answer: the adapter should have said LegFailed; same thing.
            self._on_failed(role, FailureCause.FAILED, None, out)
            return
        if self._legs[role] is not _Leg.ANSWERED:
            return
        self._leg_gone(role, out)
        dropped = _DROPPED[role]
        if self._pending is not None:
            self._finish_pending(out)
        elif self._state is FlowState.CONNECTED:
            self._finish(RequestState.COMPLETED, _HUNG_UP[role] if by_remote else dropped, out)
        elif not by_remote:
            self._finish(RequestState.FAILED, dropped, out)
        elif self._state is FlowState.ASKING_OWNER:
            self._finish(RequestState.OWNER_DECLINED, Reason.OWNER_HUNG_UP_DURING_PROMPT, out)
        else:  # the owner, after accepting, while the visitor rings
            self._finish(RequestState.COMPLETED, Reason.OWNER_HUNG_UP_BEFORE_CONNECT, out)

    def _on_digit(self, digit: str, out: list[Command]) -> None:
        if self._state is not FlowState.ASKING_OWNER:
            return
        if digit == "1":
            self._stop_prompt(out)
            self._cancel_timer(TimerName.DIGIT_WAIT, out)
            self._dial_visitor(out)
        elif digit == "2":
            self._finish(RequestState.OWNER_DECLINED, Reason.OWNER_PRESSED_2, out)
        # Any other key: the owner fumbled; keep waiting for 1 or 2.

    def _on_prompt_finished(self, out: list[Command]) -> None:
        if not self._prompt_playing:
            return  # a late report for a prompt we already stopped
        self._prompt_playing = False
        self._cancel_timer(TimerName.PROMPT_LIMIT, out)
        if self._state is FlowState.ASKING_OWNER:
            self._start_timer(TimerName.DIGIT_WAIT, self.limits.digit_wait_s, out)
        elif self._state is FlowState.TELLING_OWNER:
            self._finish_pending(out)

    def _on_timer(self, name: str, out: list[Command]) -> None:
        if name not in self._timers:
            return  # cancelled, but the engine's timer had already fired
        self._timers.discard(name)
        if name == TimerName.OWNER_RING:
            self._hang_up(LegRole.OWNER, Reason.OWNER_NO_ANSWER, out, FailureCause.NO_ANSWER)
            self._finish(RequestState.OWNER_UNREACHABLE, Reason.OWNER_NO_ANSWER, out)
        elif name == TimerName.VISITOR_RING:
            self._hang_up(LegRole.VISITOR, Reason.VISITOR_NO_ANSWER, out, FailureCause.NO_ANSWER)
            self._visitor_unreachable(Reason.VISITOR_NO_ANSWER, out)
        elif name == TimerName.DIGIT_WAIT:
            if self._prompt_plays < self.limits.max_prompt_plays:
                self._play(PromptKind.CONFIRM, out)
            else:
                # Nobody pressed anything (or voicemail picked up): not a decision, unreachable.
                self._finish(RequestState.OWNER_UNREACHABLE, Reason.PROMPT_UNANSWERED, out)
        elif name == TimerName.MAX_DURATION:
            self._finish(RequestState.COMPLETED, Reason.MAX_DURATION_REACHED, out)
        elif name == TimerName.PROMPT_LIMIT:
            self._on_prompt_finished(out)

    def _on_cancel(self, reason: str, out: list[Command]) -> None:
        if self._pending is not None:
            self._finish_pending(out)  # already decided; the cancel only cuts the notice short
        elif self._state in (FlowState.CALLING_VISITOR, FlowState.CONNECTED):
            self._finish(RequestState.COMPLETED, reason, out)
        else:
            self._finish(RequestState.CANCELLED, reason, out)

    # -- steps --

    def _dial_visitor(self, out: list[Command]) -> None:
        if self._legs[LegRole.VISITOR] is not _Leg.NOT_DIALLED:
            return  # belt and braces: the visitor is dialled at most once per flow
        self._state = FlowState.CALLING_VISITOR
        self._legs[LegRole.VISITOR] = _Leg.DIALLING
        self._report(RequestState.CALLING_VISITOR, _ACCEPT_REASON[self.facts.acceptance], out)
        self._start_timer(TimerName.VISITOR_RING, self.limits.visitor_ring_s, out)
        out.append(DialVisitor(self.facts.visitor_e164, self.facts.owner_external_e164))

    def _visitor_unreachable(self, reason: Reason, out: list[Command]) -> None:
        """Tell the owner, who accepted and is waiting on the line, before hanging up."""
        self._stop_prompt(out)  # the whisper may still be playing
        self._pending = Outcome(RequestState.VISITOR_UNREACHABLE, reason)
        self._state = FlowState.TELLING_OWNER
        self._play(PromptKind.NOTICE, out)

    def _finish_pending(self, out: list[Command]) -> None:
        assert self._pending is not None
        self._finish(self._pending.state, self._pending.reason, out)

    def _connect(self, out: list[Command]) -> None:
        self._stop_prompt(out)  # the whisper may still be playing to the owner
        out.append(Bridge())
        self._state = FlowState.CONNECTED
        self._report(RequestState.CONNECTED, Reason.BRIDGED, out)
        self._start_timer(TimerName.MAX_DURATION, self.limits.max_duration_s, out)

    def _play(self, kind: PromptKind, out: list[Command]) -> None:
        self._prompt_playing = True
        if kind is PromptKind.CONFIRM:
            self._prompt_plays += 1
        with use_language(self.facts.language) as language:
            if kind is PromptKind.CONFIRM:
                text = confirm_prompt(
                    caller_number=self.facts.visitor_e164,
                    region=self.facts.region,
                    caller_name=self.facts.caller_name,
                    cost_phrase=self.facts.cost_phrase,
                )
            else:
                compose = whisper_prompt if kind is PromptKind.WHISPER else unreachable_notice
                text = compose(
                    caller_number=self.facts.visitor_e164,
                    region=self.facts.region,
                    caller_name=self.facts.caller_name,
                )
        out.append(PlayPrompt(kind, text, language))
        if kind is not PromptKind.WHISPER:  # nothing waits for the whisper to end
            self._start_timer(TimerName.PROMPT_LIMIT, self.limits.prompt_max_s, out)

    def _stop_prompt(self, out: list[Command]) -> None:
        if self._prompt_playing:
            self._prompt_playing = False
            out.append(StopPrompt())
            self._cancel_timer(TimerName.PROMPT_LIMIT, out)

    def _hang_up(
        self,
        role: LegRole,
        reason: str,
        out: list[Command],
        cause: FailureCause | None = None,
    ) -> None:
        out.append(HangupLeg(role, reason))
        self._leg_gone(role, out, cause=cause)

    def _leg_gone(
        self,
        role: LegRole,
        out: list[Command],
        *,
        cause: FailureCause | None = None,
        sip_code: int | None = None,
    ) -> None:
        self._legs[role] = _Leg.ENDED
        self._cancel_timer(_RING_TIMER[role], out)
        out.append(RecordLeg(role, cause, sip_code))

    def _finish(self, state: RequestState, reason: str, out: list[Command]) -> None:
        for name in sorted(self._timers):
            out.append(CancelTimer(name))
        self._timers.clear()
        for role in LegRole:
            if self._legs[role] in _LIVE:
                self._hang_up(role, reason, out)
        self._prompt_playing = False
        self._report(state, reason, out)
        self._outcome = Outcome(state, reason)
        self._state = FlowState.FINISHED
        out.append(Finish(self._outcome))

    def _report(self, state: RequestState, reason: str, out: list[Command]) -> None:
        self._request_state = state
        out.append(RequestStateChanged(state, reason))

    def _start_timer(self, name: TimerName, seconds: float, out: list[Command]) -> None:
        self._timers.add(name)
        out.append(StartTimer(name, seconds))

    def _cancel_timer(self, name: TimerName, out: list[Command]) -> None:
        if name in self._timers:
            self._timers.discard(name)
            out.append(CancelTimer(name))
