"""A simulator with a frozen clock, shared by the integration tests of a module."""

import pytest


@pytest.fixture(scope="module")
def simulator(new_simulator):
    sim = new_simulator(frozen=True)
    yield sim
    sim.stop()
