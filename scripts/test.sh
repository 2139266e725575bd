#!/usr/bin/env bash
# Set everything up, lint and type-check, and run every test: domain, store (SQLite and
# PostgreSQL), web, browser, and the real SIP/media peers. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/ensure-postgres.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy callnow
.venv/bin/lint-imports
exec .venv/bin/pytest -p no:cacheprovider "$@"
