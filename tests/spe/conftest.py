"""Fixtures for the SPE client tests: a scripted HTTPS server and the project's simulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from spe_testkit import PASSWORD, USERNAME, ScriptedServer


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def scripted(test_ca: trustme.CA, tmp_path: Path) -> Iterator[ScriptedServer]:
    server = ScriptedServer(test_ca, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """A local port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def simulator_session():
    simulator = pytest.importorskip("exporter.simulator")
    sim = simulator.Simulator(
        simulator.load_scenario(simulator.DEFAULT_SCENARIO),
        host="127.0.0.1",
        port=0,
        username=USERNAME,
        password=PASSWORD,
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator_session):
    """The shared simulator, with faults and credentials reset after each test."""
    yield simulator_session
    simulator_session.state.clear_faults()
    simulator_session.state.set_credentials(USERNAME, PASSWORD)
