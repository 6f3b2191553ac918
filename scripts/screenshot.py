"""Take the README's screenshot of the status page with headless Chromium.

Starts the exporter in demo mode (bundled simulator) on a free loopback port, waits until
every collector has run once (/-/ready), and lets Debian's `chromium` (apt-get install
chromium) save the page as docs/images/status-page.png. Run it again after changing the
page:

    .venv/bin/python scripts/screenshot.py [--output PATH] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "images" / "status-page.png"
WINDOW = "1280,720"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the exporter exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the exporter was not ready within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    if shutil.which(args.chromium) is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 1
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    exporter = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "--demo", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(url, exporter)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--hide-scrollbars", f"--user-data-dir={profile}",
                 f"--window-size={WINDOW}", f"--screenshot={args.output}", url + "/"],
                check=True, timeout=120, capture_output=True,
            )
    finally:
        exporter.send_signal(signal.SIGTERM)
        exporter.wait(timeout=10)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
