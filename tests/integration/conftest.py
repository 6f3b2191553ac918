"""A simulator with a frozen clock, shared by the integration tests of a module."""

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
    # Frozen: values growing over time stay exactly as in the scenario file.
    sim.state.clock.freeze()
    sim.start()
    yield sim
    sim.stop()
