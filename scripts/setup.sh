#!/usr/bin/env bash
# Install what CallNow needs on a Debian machine (run as root): Debian packages for the real
# peers and the browser, a virtualenv with the pinned Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  python3 python3-dev gcc
  sip-tester kamailio rtpengine-daemon espeak-ng sox baresip
  chromium fonts-dejavu-core postgresql-client
  openssl
  systemd  # systemd-analyze verifies the units in ops/systemd
  nginx-light  # the reverse proxy in front of two web processes (tests/ops/test_behind_nginx.py)
  valgrind  # bench/intake_instructions.py counts the instructions of a form post
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A Python with venv and ensurepip (Debian splits these into python3-venv).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Daemons are started by CallNow or its tests, never by the package scripts.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "setup: Python 3.11 or newer is needed" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.callnow-installed
wanted="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
  echo "$wanted" > "$stamp"
fi
echo "setup: ready"
