"""A minimal owner's phone for benchmarks: a UDP socket that notes when each INVITE arrived and
answers it at once with 486 Busy Here, so the engine's call ends after one round trip.

Why not SIPp with -trace_msg: its log timestamps come from another process and its own event
loop, and parsing them back costs more than answering here. This phone asks the kernel for the
receive time of each datagram (SO_TIMESTAMPNS, CLOCK_REALTIME): the moment the INVITE reached
the socket, independent of when this thread got the GIL to read it. The HTTP client stamps its
responses with time.time(), the same clock, so the two can be subtracted.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass

# Linux values; the socket module does not export them on every Python build.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")

# Compact header forms (RFC 3261 7.3.3) a peer may use instead of the full names.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}


@dataclass(frozen=True, slots=True)
class Invite:
    visitor_digits: str  # the From user part, digits only: the visitor's number
    wire_at: float  # kernel receive time (epoch seconds)
    read_at: float  # when this thread read it (epoch seconds), to show the reader's own delay


class OwnerPhone:
    """Start with start(); `invites` maps caller digits to the first INVITE for that caller."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # A burst of INVITEs at 100+/s must not be dropped while the reader waits for the GIL.
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.invites: dict[str, Invite] = {}
        self.retransmissions = 0
        self.other_requests = 0
        self._tags: dict[str, str] = {}  # call-id -> our To tag, the same for retransmissions
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="owner-phone", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def snapshot(self) -> dict[str, Invite]:
        with self._lock:
            return dict(self.invites)

    def _run(self) -> None:
        cmsg_size = socket.CMSG_SPACE(_TIMESPEC.size)
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, address = self._sock.recvmsg(65535, cmsg_size)
            except TimeoutError:
                continue
            except OSError:
                return
            read_at = time.time()
            wire_at = read_at
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
                    wire_at = sec + nsec / 1e9
            try:
                self._handle(data, address, wire_at, read_at)
            except (ValueError, IndexError, UnicodeDecodeError):
                continue  # not SIP we understand; a benchmark peer need not be robust

    def _handle(
        self, data: bytes, address: tuple[str, int], wire_at: float, read_at: float
    ) -> None:
        text = data.decode("utf-8", errors="replace")
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        method = lines[0].split(" ", 1)[0]
        if method == "SIP/2.0":
            return  # a response (we never send requests)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if ":" not in line:
                continue
            name, value = line.split(":", 1)
            key = name.strip().lower()
            headers.append((_COMPACT.get(key, key), value.strip()))
        if method == "ACK":
            return
        if method != "INVITE":
            # BYE/CANCEL/OPTIONS should not happen with an immediate 486; answer 200 anyway.
            self.other_requests += 1
            self._sock.sendto(self._response("200 OK", headers, to_tag=None), address)
            return
        call_id = next(v for k, v in headers if k == "call-id")
        with self._lock:
            tag = self._tags.get(call_id)
            if tag is None:
                tag = self._tags[call_id] = secrets.token_hex(6)
                caller = _visitor_digits(next(v for k, v in headers if k == "from"))
                self.invites.setdefault(caller, Invite(caller, wire_at, read_at))
            else:
                self.retransmissions += 1
        self._sock.sendto(self._response("486 Busy Here", headers, to_tag=tag), address)

    @staticmethod
    def _response(status: str, headers: list[tuple[str, str]], to_tag: str | None) -> bytes:
        out = [f"SIP/2.0 {status}"]
        for name, value in headers:
            if name == "via":
                out.append(f"Via: {value}")
        for name, value in headers:
            if name == "from":
                out.append(f"From: {value}")
            elif name == "to":
                has_tag = re.search(r";\s*tag=", value) is not None
                out.append(f"To: {value}" + (f";tag={to_tag}" if to_tag and not has_tag else ""))
            elif name == "call-id":
                out.append(f"Call-ID: {value}")
            elif name == "cseq":
                out.append(f"CSeq: {value}")
        out += ["Content-Length: 0", "", ""]
        return "\r\n".join(out).encode()


def _visitor_digits(from_value: str) -> str:
    match = re.search(r"sips?:([^@;>]+)", from_value)
    if match is None:
        raise ValueError("From without a SIP URI")
    return re.sub(r"\D", "", match.group(1))
