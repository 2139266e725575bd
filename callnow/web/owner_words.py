"""The words the portal shows for stored codes: request states, rejection reasons, channels.

Built per call, so they speak the language in use (`callnow.i18n`); a code not named here is
shown as stored, with its underscores as spaces.
"""

from __future__ import annotations

from callnow.domain.decision import RejectReason
from callnow.domain.request_state import RequestState
from callnow.i18n import gettext as _


def state_names() -> dict[str, str]:
    s = RequestState
    return {
        s.RECEIVED: _("received"),
        s.REJECTED: _("rejected"),
        s.QUEUED: _("queued"),
        s.CALLING_OWNER: _("calling you"),
        s.OWNER_DECLINED: _("you declined"),
        s.OWNER_UNREACHABLE: _("you did not answer"),
        s.CALLING_VISITOR: _("calling the visitor"),
        s.VISITOR_UNREACHABLE: _("visitor did not answer"),
        s.CONNECTED: _("connected"),
        s.COMPLETED: _("completed"),
        s.FAILED: _("failed"),
        s.CANCELLED: _("cancelled"),
        s.INTERRUPTED: _("interrupted"),
    }


def reason_names() -> dict[str, str]:
    r = RejectReason
    return {
        r.DISABLED: _("page off"),
        r.NOT_ACCEPTING: _("not accepting"),
        r.OUTSIDE_HOURS: _("outside hours"),
        r.RULE: _("a rule"),
        r.DECLINED_RECENTLY: _("declined recently"),
    }


def channel_names() -> dict[str, str]:
    return {
        "web": _("page"),
        "one_step": _("one-step link"),
        "api": _("API"),
        "embed": _("button"),
    }


def portal_words() -> dict[str, dict[str, str]]:
    """What every portal template may use to name a stored code."""
    return {
        "state_names": state_names(),
        "reason_names": reason_names(),
        "channel_names": channel_names(),
    }
