"""A real SMTP server process for the mail tests: aiosmtpd on 127.0.0.1, one file per message.

    python -m tests.support.smtp_server PORT DIRECTORY [--stall-first N]
        [--tls starttls|tls --cert PEM --key PEM]

Each accepted message is written to DIRECTORY/NNNN.eml (written aside, then renamed, so a reader
never sees half a file). With --stall-first N the first N connections hang at RCPT TO (after
touching DIRECTORY/stalled), so a test can kill a sender in the middle of a conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller


class Mailbox:
    def __init__(self, directory: Path, stall_first: int) -> None:
        self.directory = directory
        self.stall_left = stall_first
        self.numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stall_left > 0:
            self.stall_left -= 1
            (self.directory / "stalled").touch()
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        part = self.directory / f"{number:04d}.part"
        part.write_bytes(envelope.original_content or envelope.content)
        os.replace(part, self.directory / f"{number:04d}.eml")
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--stall-first", type=int, default=0)
    parser.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    options: dict = {}
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":  # plain first; mail only after STARTTLS
            options = {"tls_context": context, "require_starttls": True}
        else:
            options = {"server_hostname": "127.0.0.1", "ssl_context": context}
    controller = Controller(
        Mailbox(args.directory, args.stall_first), hostname="127.0.0.1", port=args.port, **options
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
