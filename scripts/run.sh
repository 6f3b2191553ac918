#!/usr/bin/env bash
# The one command that installs and runs the exporter on a fresh machine.
# Without --config.file it starts the bundled SPE simulator and points the exporter at it
# (demo mode), so you see real metrics on http://127.0.0.1:9474/metrics within a minute.
# Examples:
#   scripts/run.sh                                   # demo mode
#   scripts/run.sh --config.file=config.yml          # against your SPE servers
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[simulator]'
exec .venv/bin/mailstore-spe-exporter "$@"
