"""A simulator with a frozen clock for the maintenance tests; faults are cleared after each."""

import pytest

from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario


@pytest.fixture(scope="module")
def simulator():
    sim = Simulator(
        load_scenario(DEFAULT_SCENARIO),
        host="127.0.0.1",
        port=0,
        username="admin",
        password="admin-password",
    )
    sim.state.clock.freeze()  # last-success timestamps equal sim.state.now() exactly
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator):
    yield simulator
    simulator.state.clear_faults()
