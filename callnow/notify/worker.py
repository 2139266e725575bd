"""The mail sender on its own: `python -m callnow.notify.worker [--config FILE]`.

`callnow serve` and `callnow engine` run the sender beside the engine; this runs only the sender,
for operators who want it apart (and for the crash tests, which kill it mid-send).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from callnow import logs
from callnow.bootstrap import ensure_secret_key
from callnow.config import Settings
from callnow.notify.sender import MailSender
from callnow.store.db import make_engine, make_session_factory


async def _run(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await MailSender(make_session_factory(engine), settings).run(stop)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Send the owners' e-mail from the outbox.")
    parser.add_argument("--config", type=Path, default=None, help="the settings TOML file")
    args = parser.parse_args(argv)
    settings = ensure_secret_key(Settings.load(args.config))  # the links are signed with it
    logs.configure(settings.log_level, settings.log_format, process="mail")
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
