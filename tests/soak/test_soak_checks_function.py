"""The soak script checks function, not only survival (issue 13 B17): it PASSes on the
exporter, and FAILs on a variant whose every SPE call fails (which still serves /metrics
with a HELP line for mailstore_spe_up: the old check `"mailstore_spe_up" in text` passed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BROKEN = '''
import exporter.spe.client as client
from exporter.spe.errors import SPEConnectionError


def _broken(self, function, args, read_timeout):
    raise SPEConnectionError("broken on purpose (soak self-test)", function=function)


client.SPEClient._post = _broken
'''


def _soak(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/soak.py", "--duration", "14", "--warmup", "6",
         "--fault-every", "3", "--recovery-timeout", "12", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_soak_passes_on_the_exporter():
    result = _soak()
    assert result.returncode == 0, result.stdout[-2000:]
    assert "RESULT: PASS" in result.stdout
    assert "recoveries after clearing faults: 0" not in result.stdout


def test_soak_fails_on_an_exporter_whose_spe_calls_all_fail(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BROKEN)
    result = _soak("--pythonpath", str(tmp_path))
    assert result.returncode == 1, result.stdout[-2000:]
    assert "RESULT: FAIL" in result.stdout
    assert "timeout: up=0," in result.stdout
    assert "failed scrapes: 0, scrapes that do not parse: 0" in result.stdout  # it serves
