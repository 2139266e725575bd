"""Did the owner's PBX divert the call (to voicemail, most often)? A pure decision on what a
response to the owner's INVITE carried.

A PBX that cannot reach the owner's phone (busy, no answer, do not disturb, forward always)
often sends the call on to the owner's voicemail box, which answers like a phone would. The
prompt would then be recorded into the box. Some PBXs say so:

- `181 Call Is Being Forwarded` (RFC 3261 21.1.3) while the call is being sent elsewhere;
- a `Diversion` header on the answer (RFC 5806): one entry per redirection, e.g.
  `<sip:1001@pbx.example>;reason=no-answer;counter=1`;
- `History-Info` entries on the answer (RFC 7044) whose target carries the SIP cause that made
  the PBX try the next one: as a `cause=` URI parameter (RFC 4458, `<sip:vm@pbx;cause=486>`) or
  as an escaped Reason header (`<sip:1001@pbx?Reason=SIP%3Bcause%3D408>`). A cause of 300 or
  more means a target did not take the call; entries without a cause are ordinary routing
  (an alias mapped to the owner's phones) and show nothing.

Any one sign is enough. Whether a diverted call counts as not answered is the operator's
choice (`sip.owner_divert_unanswered`), not decided here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

CALL_IS_BEING_FORWARDED = 181

# RFC 4458's `cause=` URI parameter (also seen as a header parameter of the entry).
_CAUSE_PARAM = re.compile(r"[;?&]cause=(\d{3})\b", re.IGNORECASE)
# An escaped Reason header in the URI: Reason=SIP;cause=408 (after unescaping).
_REASON_CAUSE = re.compile(r"reason=sip\s*;\s*cause\s*=\s*(\d{3})\b", re.IGNORECASE)
# RFC 5806 `reason=` of a Diversion entry (a token or a quoted string).
_DIVERSION_REASON = re.compile(r';\s*reason\s*=\s*"?([A-Za-z0-9-]+)"?', re.IGNORECASE)
_URI = re.compile(r"(sips?|tel):", re.IGNORECASE)


@dataclass(frozen=True)
class DivertSign:
    """What showed the divert, for logs: `source` is `181`, `diversion` or `history-info`;
    `detail` the reason or cause found (may be empty)."""

    source: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.source} ({self.detail})" if self.detail else self.source


def divert_sign(
    code: int, diversion: Sequence[str] = (), history_info: Sequence[str] = ()
) -> DivertSign | None:
    """The sign that a response with status `code` and these header values (each value as
    received; a value may hold several comma-separated entries) shows a diverted call, or
    None. Only a 181 or an answer (2xx) can show one."""
    if code == CALL_IS_BEING_FORWARDED:
        return DivertSign("181", "Call Is Being Forwarded")
    if not 200 <= code < 300:
        return None
    for value in diversion:
        for entry in split_entries(value):
            if _URI.search(entry):
                found = _DIVERSION_REASON.search(_outside_brackets(entry))
                return DivertSign("diversion", found.group(1).lower() if found else "")
    for value in history_info:
        for entry in split_entries(value):
            cause = history_cause(entry)
            if cause is not None and cause >= 300:
                return DivertSign("history-info", f"cause={cause}")
    return None


def history_cause(entry: str) -> int | None:
    """The SIP cause an RFC 7044 History-Info entry carries, or None."""
    text = unquote(entry)
    for pattern in (_REASON_CAUSE, _CAUSE_PARAM):
        found = pattern.search(text)
        if found:
            return int(found.group(1))
    return None


def split_entries(value: str) -> list[str]:
    """A header value's comma-separated entries; commas inside `<...>` or quotes stay."""
    entries: list[str] = []
    current: list[str] = []
    in_brackets = in_quotes = False
    for char in value:
        if char == '"' and not in_brackets:
            in_quotes = not in_quotes
        elif char == "<" and not in_quotes:
            in_brackets = True
        elif char == ">" and not in_quotes:
            in_brackets = False
        elif char == "," and not (in_brackets or in_quotes):
            entries.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    entries.append("".join(current).strip())
    return [entry for entry in entries if entry]


def _outside_brackets(entry: str) -> str:
    """The entry's header parameters: what follows its `<uri>` (or the whole entry)."""
    _, bracket, rest = entry.partition(">")
    return rest if bracket else entry
