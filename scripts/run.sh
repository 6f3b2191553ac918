#!/usr/bin/env bash
# The one command that installs and runs the exporter on a fresh machine.
# Without arguments it runs the demo: the bundled SPE simulator and the exporter polling
# it (--demo), so you see real metrics on http://127.0.0.1:9474/metrics within a minute.
# With arguments they go to the exporter as they are (no demo unless you pass --demo).
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
if [ "$#" -eq 0 ]; then
    set -- --demo
fi
exec .venv/bin/mailstore-spe-exporter "$@"
