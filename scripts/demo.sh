#!/usr/bin/env bash
# Set everything up and run CallNow with the embedded defaults (one process, SQLite, demo data),
# with SIPp playing the owner's phone and the visitor's phone so a whole callback can be watched.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/callnow demo "$@"
