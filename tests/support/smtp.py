"""The `smtp_server` fixture: a real aiosmtpd process (tests/support/smtp_server.py)."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SmtpServer:
    port: int
    directory: Path
    process: subprocess.Popen

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(self.directory.glob("*.eml"))
        ]

    def wait_for(self, count: int, timeout_s: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.1)
        return self.messages()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (openssl), which is its own CA."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_smtp_server(
    directory: Path,
    *,
    stall_first: int = 0,
    tls: str = "none",
    cert: Path | None = None,
    key: Path | None = None,
) -> SmtpServer:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tls_args = ["--tls", tls, "--cert", str(cert or ""), "--key", str(key or "")]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.smtp_server",
            str(port),
            str(directory),
            "--stall-first",
            str(stall_first),
            *tls_args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        pytest.fail("the SMTP server process did not start")
    return SmtpServer(port=port, directory=directory, process=process)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp_server(tmp_path / "mailbox")
    yield server
    server.stop()


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"the mail has no {subtype} part"
    return str(part.get_content())  # type: ignore[attr-defined]


def text_of(message: EmailMessage) -> str:
    """A mail's plain-text part (owner mails have an HTML part beside it)."""
    return _part(message, "plain")


def html_of(message: EmailMessage) -> str:
    return _part(message, "html")
