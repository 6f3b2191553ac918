"""Fixtures: simulators served over real HTTPS on 127.0.0.1, and a small API client.

Note: this environment sets REQUESTS_CA_BUNDLE, which overrides ``Session.verify``; passing
``verify=`` on every request (as SimApi does) is what makes requests trust ``sim.ca_file``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

USER, PASSWORD = "admin", "admin-password"


class SimApi:
    def __init__(self, sim: Simulator, auth: tuple[str, str] = (USER, PASSWORD)) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.auth = auth

    def post(self, path: str, data: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 10)
        return self.session.post(self.sim.url + path, data=data, verify=self.sim.ca_file, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 10)
        return self.session.get(self.sim.url + path, verify=self.sim.ca_file, **kwargs)

    def invoke(self, function: str, **args: Any) -> dict[str, Any]:
        """The decoded envelope of one call (asserting HTTP 200)."""
        resp = self.post(f"/api/invoke/{function}", data=args)
        assert resp.status_code == 200, resp.content
        return decode(resp)

    def result(self, function: str, **args: Any) -> Any:
        env = self.invoke(function, **args)
        assert env["statusCode"] == "succeeded", env
        return env["result"]

    def error(self, function: str, **args: Any) -> str:
        env = self.invoke(function, **args)
        assert env["statusCode"] == "failed", env
        assert env["result"] is None
        return env["error"]["message"]

    def get_status(self, token: str, last: int, timeout_ms: int = 0) -> requests.Response:
        data = {"token": token, "lastKnownStatusVersion": last, "millisecondsTimeout": timeout_ms}
        return self.post("/api/get-status", data=data)

    def control(self, **payload: Any) -> requests.Response:
        return self.post("/_sim/control", data=json.dumps(payload))

    def close(self) -> None:
        self.session.close()


def decode(resp: requests.Response) -> Any:
    assert resp.content.startswith(b"\xef\xbb\xbf"), resp.content[:20]
    return json.loads(resp.content.decode("utf-8-sig"))


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Simulator]:
    """One simulator for read-only tests. Tests must not change its state."""
    with Simulator(load_scenario(DEFAULT_SCENARIO), username=USER, password=PASSWORD) as sim:
        sim.state.clock.freeze()  # deterministic counters for comparisons
        yield sim


@pytest.fixture
def api(shared_sim: Simulator) -> Iterator[SimApi]:
    client = SimApi(shared_sim)
    yield client
    client.close()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A private simulator for tests that change state or inject faults."""
    with Simulator(load_scenario(DEFAULT_SCENARIO), username=USER, password=PASSWORD) as s:
        yield s


@pytest.fixture
def sim_api(sim: Simulator) -> Iterator[SimApi]:
    client = SimApi(sim)
    yield client
    client.close()
