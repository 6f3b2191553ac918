"""Runs ``exporter.cli.main`` in a child process on a simulated platform.

Used by test_cli.py. Environment switches (all optional):

* ``SIMULATE_WINDOWS=1`` - no ``signal.SIGHUP`` and no C library for ctypes to find, as on
  Windows (no glibc: the allocator tuning must be skipped, reload only via /-/reload).
* ``DEFAULT_CONFIG_FILE=PATH`` - the path the exporter looks at without --config.file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from pathlib import Path

if os.environ.get("SIMULATE_WINDOWS") == "1":
    del signal.SIGHUP

    def _no_library(_name: str) -> None:
        return None

    class _NoCDLL:
        def __init__(self, name: str, *args: object, **kwargs: object) -> None:
            raise OSError(f"{name}: cannot open shared object file (simulated Windows)")

    ctypes.util.find_library = _no_library
    ctypes.CDLL = _NoCDLL  # type: ignore[misc, assignment]

# imported after the platform is simulated
from exporter import allocator, cli

if os.environ.get("DEFAULT_CONFIG_FILE"):
    cli.default_config_file = lambda: Path(os.environ["DEFAULT_CONFIG_FILE"])

print(f"allocator libc found: {allocator._LIBC is not None}", file=sys.stderr, flush=True)
sys.exit(cli.main(sys.argv[1:]))
