"""A simulator with a frozen clock, shared by the integration tests of a module."""

import pytest


@pytest.fixture(scope="module")
def simulator(new_simulator):
    sim = new_simulator(frozen=True)
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def _clear_simulator_faults(request):
    """Faults a test injects into the module's simulator end with the test."""
    yield
    if "simulator" in request.fixturenames:
        request.getfixturevalue("simulator").state.clear_faults()
