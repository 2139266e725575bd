"""Before a server starts: every port it will bind is free, or one line names the setting.

Two instances on one host used to meet first deep in start-up (the DTMF log listener, the SIP
stack, uvicorn) with a traceback that named neither the setting nor the port. The check binds
and releases each socket; a port taken in the moment between still fails later, as before.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Literal

from callnow.config import Settings


@dataclass(frozen=True)
class PortToBind:
    setting: str
    host: str
    port: int
    transport: Literal["tcp", "udp"]


def ports_to_bind(settings: Settings, *, web: bool, engine: bool) -> list[PortToBind]:
    """What this process (and an rtpengine it spawns) will listen on."""
    ports = []
    if web:
        ports.append(PortToBind("web.port", settings.web.host, settings.web.port, "tcp"))
    if engine:
        sip, media = settings.sip, settings.rtpengine
        ports.append(PortToBind("sip.listen_port", sip.listen_host, sip.listen_port, "udp"))
        ports.append(
            PortToBind("rtpengine.dtmf_log_port", media.ng_host, media.dtmf_log_port, "udp")
        )
        if media.mode == "spawn":  # an external rtpengine has bound its own already
            ports.append(PortToBind("rtpengine.ng_port", media.ng_host, media.ng_port, "udp"))
    metrics = settings.metrics
    if metrics.enabled and web:
        ports.append(PortToBind("metrics.port", metrics.host, metrics.port, "tcp"))
    # An engine inside the web's process shows its metrics on the web's listener.
    if metrics.enabled and engine and (not web or settings.engine_in_own_process):
        ports.append(PortToBind("metrics.engine_port", metrics.host, metrics.engine_port, "tcp"))
    return ports


def first_problem(ports: list[PortToBind]) -> str | None:
    """One line about the first port that cannot be bound, or None when all can."""
    for wanted in ports:
        problem = _problem(wanted)
        if problem is not None:
            return problem
    return None


def _problem(wanted: PortToBind) -> str | None:
    kind = socket.SOCK_STREAM if wanted.transport == "tcp" else socket.SOCK_DGRAM
    where = f"{wanted.setting} {wanted.port}"
    try:
        family, _, _, _, address = socket.getaddrinfo(wanted.host, wanted.port, type=kind)[0]
    except socket.gaierror:
        return f"{where}: the host {wanted.host!r} does not resolve"
    with socket.socket(family, kind) as probe:
        if wanted.transport == "tcp":
            # As the HTTP server does, so a connection in TIME_WAIT does not count as in use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{where} is already in use on {wanted.host}"
            if exc.errno == errno.EACCES:
                return f"{where} on {wanted.host} needs privileges this process does not have"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{where}: {wanted.host} is not an address of this machine"
            return f"{where} on {wanted.host} cannot be bound: {exc.strerror}"
    return None
