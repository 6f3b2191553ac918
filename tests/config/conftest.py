"""Shared helpers for the config tests: files in a temporary directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# check_pem_file only looks for the PEM marker, so no real certificate is needed.
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text, mode=0o600) -> Path; text starting with a newline is dedented."""

    def _write(name: str, text: str | bytes, mode: int = 0o600) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            if text.startswith("\n"):
                text = textwrap.dedent(text)
            path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    return _write


@pytest.fixture
def ca_file(write) -> Path:
    return write("ca.pem", FAKE_PEM)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests set the variables they need; a developer's environment must not leak in.
    for name in ("SPE_PASSWORD", "SPE_URL", "SPE_CONCURRENCY", "UNSET_VAR"):
        monkeypatch.delenv(name, raising=False)
