#!/usr/bin/env bash
# The one command that installs everything the tests need on a fresh machine and runs
# the whole suite: Debian packages (prometheus: promtool + a real Prometheus for the end-to-end
# tests; prometheus-alertmanager: amtool + a real Alertmanager; systemd: systemd-analyze;
# chromium: the status page screenshot), a venv with the
# package and its test extras, ruff, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

APT_PACKAGES=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    APT_PACKAGES+=(prometheus)   # promtool and a real Prometheus for the tests
fi
# Debian installs Alertmanager as prometheus-alertmanager, with amtool. Where systemd runs,
# the package also starts a system Alertmanager on :9093; the tests use their own ports.
if ! command -v amtool >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    APT_PACKAGES+=(prometheus-alertmanager)   # amtool and a real Alertmanager for the tests
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    APT_PACKAGES+=(systemd)      # systemd-analyze verify/security for deploy/systemd
fi
if ! command -v chromium >/dev/null 2>&1; then
    APT_PACKAGES+=(chromium)     # headless screenshot of the status page (scripts/screenshot.py)
fi
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
    echo "== installing Debian packages: ${APT_PACKAGES[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        "${APT_PACKAGES[@]}"
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
