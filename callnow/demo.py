"""`callnow demo`: the whole callback on one machine, with SIPp playing both telephones.

The owner's phone rings, answers, hears the start of the prompt and presses 1; the visitor's
phone behind the "trunk" answers, talks for ten seconds and hangs up. Both are SIPp processes
on 127.0.0.1 started here, so a newcomer can submit the form and watch every state go by.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sipp"


class DemoError(RuntimeError):
    pass


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoPhone:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_phone(name: str, scenario: str, workdir: Path) -> DemoPhone:
    binary = shutil.which("sipp")
    if binary is None:
        raise DemoError("sipp is not installed; run ./scripts/setup.sh (Debian package sip-tester)")
    path = SCENARIOS / scenario
    if not path.is_file():
        raise DemoError(f"the demo scenario {path} is missing")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_udp_port()
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "-sf",
            str(path),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(_free_udp_port()),
            "-cp",
            str(_free_udp_port()),
            "-nostdin",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    try:
        process.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        return DemoPhone(name, port, process)
    raise DemoError(f"the demo {name} phone (SIPp) exited at once; see {workdir / name}.log")


def start_phones(workdir: Path) -> tuple[DemoPhone, DemoPhone]:
    owner = start_phone("owner", "demo_owner.xml", workdir)
    try:
        callee = start_phone("callee", "demo_callee.xml", workdir)
    except BaseException:
        owner.stop()
        raise
    return owner, callee
