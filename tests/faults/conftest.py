"""Two simulators (one to break, one that stays healthy), a proxy and log capture."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from .faultkit import PASSWORD, USERNAME, LogCapture, RewritingProxy, cert_files, make_simulator


@pytest.fixture(scope="module")
def sim_a():
    """The simulator behind the faulty target ``spe1``."""
    sim = make_simulator().start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def sim_b():
    """The simulator behind the healthy target ``spe2``: never given a fault."""
    sim = make_simulator().start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def certs():
    """Two certificates: the one the proxy normally presents, and an unexpected one."""
    return {"good": cert_files("good"), "other": cert_files("other")}


@pytest.fixture(scope="module")
def proxy(sim_a, certs):
    p = RewritingProxy(sim_a, certs["good"])
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def _reset(request) -> Iterator[None]:
    yield
    for name in ("sim_a", "sim_b"):
        if name in request.fixturenames:
            sim = request.getfixturevalue(name)
            sim.state.clear_faults()
            sim.state.set_credentials(USERNAME, PASSWORD)
    if "proxy" in request.fixturenames:
        p = request.getfixturevalue("proxy")
        p.overrides.clear()
        p.set_certificate(request.getfixturevalue("certs")["good"])


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    logger = logging.getLogger("exporter")
    capture = LogCapture()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(old_level)
