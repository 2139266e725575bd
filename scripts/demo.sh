#!/usr/bin/env bash
# Set everything up and run CallNow with the embedded defaults (one process, SQLite, demo data).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/callnow serve "$@"
