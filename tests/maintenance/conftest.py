"""A simulator with a frozen clock for the maintenance tests; faults are cleared after each."""

import pytest


@pytest.fixture(scope="module")
def simulator(new_simulator):
    # Frozen: last-success timestamps equal sim.state.now() exactly.
    sim = new_simulator(frozen=True)
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator):
    yield simulator
    simulator.state.clear_faults()
