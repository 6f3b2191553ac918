"""Proxy settings come from the environment once, when the client is created."""

from __future__ import annotations

import pytest
from spe_testkit import PASSWORD, USERNAME

from exporter.spe.client import SPEClient
from exporter.spe.errors import SPEConnectionError


def _client(sim) -> SPEClient:
    return SPEClient(sim.url, USERNAME, PASSWORD, ca_file=sim.ca_file)


def test_a_proxy_from_the_environment_is_used(sim, closed_port, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = _client(sim)
    with pytest.raises(SPEConnectionError):
        client.call("GetEnvironmentInfo")  # went to the (dead) proxy, not to SPE
    client.close()


def test_no_proxy_and_later_changes_of_the_environment(sim, closed_port, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = _client(sim)
    assert client.call("GetEnvironmentInfo")["serverName"]
    # read once at creation: a proxy set afterwards does not change this client
    monkeypatch.delenv("NO_PROXY")
    assert client.call("GetEnvironmentInfo")["serverName"]
    client.close()
