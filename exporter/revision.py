"""The git commit the exporter was built from (``revision`` of the build info series).

Known at build or install time, looked up in this order:

1. the environment variable ``MAILSTORE_SPE_EXPORTER_REVISION`` (e.g. set from the
   container's ``REVISION`` build argument),
2. the file ``exporter/REVISION`` that ``setup.py`` writes into the wheel and the sdist
   when it knows the commit (from that variable, or ``git rev-parse HEAD`` of the tree it
   builds from),
3. ``git rev-parse HEAD`` when the package runs from a git checkout (``pip install -e``,
   ``scripts/run.sh``),

else ``"unknown"``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

ENV_VAR = "MAILSTORE_SPE_EXPORTER_REVISION"
REVISION_FILE = Path(__file__).with_name("REVISION")
UNKNOWN = "unknown"
_COMMIT = re.compile(r"[0-9a-f]{7,64}")


def _valid(text: str | None) -> str | None:
    text = (text or "").strip().lower()
    return text if _COMMIT.fullmatch(text) else None


def git_head(directory: Path) -> str | None:
    """HEAD of the git checkout ``directory`` is the top of, if it is one."""
    if not (directory / ".git").exists():
        return None
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return _valid(proc.stdout) if proc.returncode == 0 else None


@functools.cache
def revision() -> str:
    found = _valid(os.environ.get(ENV_VAR))
    if found is None and REVISION_FILE.is_file():
        found = _valid(REVISION_FILE.read_text(encoding="utf-8"))
    if found is None:
        found = git_head(Path(__file__).resolve().parent.parent)
    return found or UNKNOWN
