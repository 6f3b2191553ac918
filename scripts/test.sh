#!/usr/bin/env bash
# The one command that installs everything the tests need on a fresh machine and runs
# the whole suite: Debian's prometheus (promtool + a real Prometheus for the end-to-end
# tests), a venv with the package and its test extras, ruff, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "== installing Debian's prometheus (promtool and prometheus for the tests)"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "== installing the package with its test extras"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .

echo "== pytest"
exec .venv/bin/pytest "$@"
