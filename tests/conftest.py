"""Fixtures shared by all tests."""

import shutil

import pytest


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not installed: run scripts/test.sh, which installs Debian's "
            "prometheus package (promtool and prometheus)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _require("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _require("prometheus")
