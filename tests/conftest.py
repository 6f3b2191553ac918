"""Fixtures shared by all tests."""

import shutil

import pytest


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not installed: run scripts/test.sh, which installs Debian's "
            "prometheus (promtool, prometheus) and prometheus-alertmanager "
            "(amtool, prometheus-alertmanager) packages",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _require("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _require("prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _require("amtool")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    # Debian installs Alertmanager as prometheus-alertmanager.
    return _require("prometheus-alertmanager")


SIMULATOR_USER = "admin"
SIMULATOR_PASSWORD = "admin-password"


@pytest.fixture(scope="session")
def new_simulator():
    """Starts a simulator of the default scenario; ``frozen`` stops its clock, so values
    that grow over time stay exactly as in the scenario file. The caller stops it."""
    from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

    def make(*, frozen: bool = False):
        sim = Simulator(
            load_scenario(DEFAULT_SCENARIO),
            host="127.0.0.1",
            port=0,
            username=SIMULATOR_USER,
            password=SIMULATOR_PASSWORD,
        )
        if frozen:
            sim.state.clock.freeze()
        sim.start()
        return sim

    return make
