"""The README's status page picture: the script that takes it works, and the README shows
the file it writes. Needs Debian's chromium, which scripts/test.sh installs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PICTURE = "docs/images/status-page.png"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_readme_shows_the_committed_picture():
    assert f"]({PICTURE})" in (REPO / "README.md").read_text()
    assert _png_size(REPO / PICTURE) == (1280, 720)


def test_the_screenshot_script_takes_the_status_page(tmp_path):
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run scripts/test.sh, which installs Debian's "
                    "chromium package", pytrace=False)
    output = tmp_path / "status.png"
    proc = subprocess.run([sys.executable, "scripts/screenshot.py", "--output", str(output)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _png_size(output) == (1280, 720)
    # A blank page compresses to a few KB; the status table with its text does not.
    assert output.stat().st_size > 30_000
