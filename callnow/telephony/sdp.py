"""Small, line-based SDP edits the adapters need (no business rules, no parsing library).

Only what RFC 3264 asks of an answerer and of an offerer in a re-INVITE:
- `direction` / `with_direction` / `answer_direction`: the media direction attribute
  (`a=sendrecv|sendonly|recvonly|inactive`, session or media level; media level wins),
- `continue_origin`: a re-offer or re-answer keeps the `o=` line of the session we announced
  to that party first, with a higher version (RFC 3264 8),
- `own_origin`: an `o=` line of ours, so one party's user name, session id and address never
  reach the other party.
"""

from __future__ import annotations

import re
from typing import Literal

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")

# What an answerer answers to each offered direction (RFC 3264 6.1), when it wants to both
# send and receive; hold is the offerer's choice and the answer follows it.
_ANSWER: dict[Direction, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}

_DIRECTION_LINE = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$")


def _lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line]


def _join(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def direction(sdp: str) -> Direction:
    """The first audio stream's direction (media level, else session level, else sendrecv).

    A `c=` address of 0.0.0.0 is the old (RFC 2543) way of putting a call on hold; it counts
    as `inactive` unless a direction attribute says otherwise.
    """
    session: Direction | None = None
    media: Direction | None = None
    in_audio = False
    seen_audio = False
    zero_address = False
    for line in _lines(sdp):
        if line.startswith("m="):
            if seen_audio:
                break
            in_audio = line.startswith("m=audio ")
            seen_audio = in_audio
            continue
        if line.startswith("c=") and line.split()[-1] == "0.0.0.0":
            zero_address = True
        found = _DIRECTION_LINE.match(line)
        if found:
            value: Direction = found.group(1)  # type: ignore[assignment]  # regex limits it
            if in_audio:
                media = value
            elif not seen_audio:
                session = value
    if media is not None:
        return media
    if session is not None:
        return session
    return "inactive" if zero_address else "sendrecv"


def answer_direction(offered: Direction) -> Direction:
    """The direction an answer carries for an offer of `offered` (RFC 3264 6.1)."""
    return _ANSWER[offered]


def with_direction(sdp: str, value: Direction) -> str:
    """`sdp` with every direction attribute removed and `a=<value>` on each media section."""
    out: list[str] = []
    in_media = False
    for line in _lines(sdp):
        if _DIRECTION_LINE.match(line):
            continue
        if line.startswith("m="):
            if in_media:
                out.append(f"a={value}")
            in_media = True
        out.append(line)
    if in_media:
        out.append(f"a={value}")
    return _join(out)


def origin(sdp: str) -> str | None:
    """The `o=` line, or None."""
    return next((line for line in _lines(sdp) if line.startswith("o=")), None)


def continue_origin(sdp: str, previous: str) -> str:
    """`sdp` with the `o=` line of `previous`, its session version one higher."""
    old = origin(previous)
    if old is None:
        return sdp
    parts = old.split(" ")
    if len(parts) == 6 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) + 1)
    return _replace_origin_line(sdp, " ".join(parts))


def own_origin(sdp: str, session_id: int, address: str, *, user: str = "callnow") -> str:
    """`sdp` with an `o=` line of ours (version 1): nothing of the party it came from."""
    return _replace_origin_line(sdp, f"o={user} {session_id} 1 IN IP4 {address}")


def _replace_origin_line(sdp: str, line: str) -> str:
    return _join([line if ln.startswith("o=") else ln for ln in _lines(sdp)])


def codec_names(sdp: str) -> list[str]:
    """Encoding names of the first audio stream, in its order (static types by number)."""
    static = {"0": "PCMU", "8": "PCMA", "9": "G722", "18": "G729"}
    payloads: list[str] = []
    names: dict[str, str] = {}
    for line in _lines(sdp):
        if line.startswith("m=audio ") and not payloads:
            payloads = line.split()[3:]
        elif line.startswith("a=rtpmap:"):
            number, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[number] = rest.split("/")[0]
    return [names.get(p, static.get(p, p)) for p in payloads]
