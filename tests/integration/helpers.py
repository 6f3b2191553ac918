"""Helpers for tests that run the whole exporter against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config import parse_config

MB = 1048576


def exporter_for(sim, *, url: str | None = None, target: str = "simulator", **overrides):
    """An Exporter for one target pointing at ``sim`` (or ``url``), listening on a free port."""
    spec = {
        "url": url or sim.url,
        "username": "admin",
        "password": "admin-password",
        "tls": {"ca_file": str(sim.ca_file)},
        "timeouts": {"connect": "2s", "read": "5s", "async_deadline": "10s"},
    }
    spec.update(overrides)
    config = parse_config({"web": {"listen_address": "127.0.0.1:0"}, "targets": {target: spec}})
    return Exporter(config, clock=sim.state.now)


@contextmanager
def serving_exporter(sim, **kwargs) -> Iterator[Exporter]:
    """``exporter_for`` started without its scheduler (tests drive the collectors)."""
    exp = exporter_for(sim, **kwargs)
    exp.start(schedule=False)
    try:
        yield exp
    finally:
        exp.stop()


def scrape(exp: Exporter, **headers: str) -> str:
    url = f"http://127.0.0.1:{exp.web.address[1]}/metrics"
    response = requests.get(url, headers=headers, timeout=5)
    response.raise_for_status()
    return response.text


def metric_values(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted label pairs) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def k(**labels: str) -> tuple[tuple[str, str], ...]:
    """Sorted label pairs; target defaults to "simulator"."""
    labels.setdefault("target", "simulator")
    return tuple(sorted(labels.items()))
