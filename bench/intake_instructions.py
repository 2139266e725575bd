"""What CallNow's public form post costs in machine instructions: counted, so it does not drift.

    .venv/bin/python bench/intake_instructions.py [--posts 200] [--together 1]

The timed benches (`intake_ratio.py`) swing by up to half between runs of the same code on the
shared machines, which hides any change smaller than that. This one runs CallNow's web app under
valgrind (`cachegrind`, no cache simulation), which counts the instructions the process runs,
the same from one run to the next within a few in ten thousand. Run it on two versions to see
what a change saves.

The app is built as the intake bench builds it (`bench/_web_apps.callnow_app`: the demo page,
SQLite, every abuse limit lifted, logged as `callnow serve` logs), and the form is posted through
httpx's ASGI transport in the same process: the count covers the app, its middleware, the thread
hand-over, SQLite and the log line, not uvicorn's HTTP parsing. Each post uses a new number, so
each does the whole intake. The process runs twice, with 10 and with 10 + `--posts` posts; the
difference over `--posts` leaves out the start-up (imports, migrations, demo data).

With `--together N`, the posts are sent N at a time and each lot is awaited whole, as a flood's
posts arrive: they queue behind one another and share commits (`web/shared_commits.py`). With
the default, 1, each post runs alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import print_machine
from bench._web_apps import PROFILE, callnow_app, number

WARM_UP_POSTS = 10


async def _post(posts: int, together: int) -> None:
    import httpx

    app = callnow_app(Path(tempfile.mkdtemp(prefix="callnow-instructions-")))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's own lines: not counted
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = await client.get(f"/callnow/{PROFILE}")
        match = re.search(r'name="form_token" value="([^"]+)"', page.text)
        if match is None:
            raise SystemExit(f"the public page gave no form token ({page.status_code})")

        async def post(n: int) -> None:
            answer = await client.post(
                f"/callnow/{PROFILE}",
                data={"form_token": match.group(1), "name": "Bench Visitor", "number": number(n)},
            )
            if answer.status_code != 303:
                raise SystemExit(f"post {n} was answered {answer.status_code}, not 303")

        for first in range(0, posts, together):
            await asyncio.gather(*(post(n) for n in range(first, min(first + together, posts))))


def _instructions(posts: int, together: int) -> int:
    """Instructions of a whole process that posts `posts` times."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        str(posts),
        "--together",
        str(together),
    ]
    # The same hash seed each time: dict and set layouts, and so the work, repeat exactly.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--together", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        asyncio.run(_post(args.child, args.together))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: ./scripts/setup.sh installs it")
    print_machine(
        f"intake instructions: {args.posts} form posts under cachegrind, {args.together} at a time"
    )
    start_up = _instructions(WARM_UP_POSTS, args.together)
    whole = _instructions(WARM_UP_POSTS + args.posts, args.together)
    print(f"instructions per form post: {(whole - start_up) / args.posts / 1e6:.3f} M")


if __name__ == "__main__":
    main()
