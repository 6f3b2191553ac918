"""The whole ``/metrics`` of the default simulator scenario, byte for byte.

One poll of every collector against the default scenario with the clock pinned at
``FIXED_NOW`` and every measured duration pinned at zero, scraped once in each format,
must equal the files next to this test. It proves that a change meant to keep the output
(a refactor) keeps it, down to the order of series and the formatting of values.

If you add, rename or remove a series on purpose (or change the default scenario),
regenerate the files and review the diff like code::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden -q
    git diff tests/golden/

Values not pinned: the exporter's version, revision and Python version of
``mailstore_spe_exporter_build_info`` (and ``python_info``) are written as ``@VERSION@``,
``@REVISION@`` and ``@PYTHON@``, and the values of the exporter's own ``process_*`` and
``python_*`` series as ``@RUNTIME@``; the served body is masked the same way before it is
compared.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest
import requests

from exporter import __version__
from exporter.revision import revision
from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario
from exporter.simulator.clock import SimClock
from tests.integration.helpers import serving_exporter

HERE = Path(__file__).parent
FIXED_NOW = 1768471200.0  # 2026-01-15T10:00:00Z
GOLDEN = {
    "text": (HERE / "default-scenario.prom", {}),
    "openmetrics": (
        HERE / "default-scenario.openmetrics",
        {"Accept": "application/openmetrics-text; version=1.0.0"},
    ),
}
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

VOLATILE = {
    __version__: "@VERSION@",
    platform.python_version(): "@PYTHON@",
    revision(): "@REVISION@",
}
# The exporter's own process and runtime series (exporter/runtime.py): their names and
# labels are pinned, their values are the machine's and written as @RUNTIME@.
RUNTIME_PREFIXES = ("process_", "python_")


def _placeholders(body: str) -> str:
    lines = []
    for line in body.splitlines(keepends=True):
        if line.startswith("python_info{"):  # the running Python's version, split up
            line = "python_info{@PYTHON_LABELS@}" + line.partition("}")[2]
        if line.startswith("mailstore_spe_exporter_build_info{"):
            for value, placeholder in VOLATILE.items():
                line = line.replace(f'"{value}"', f'"{placeholder}"')
        if line.startswith(RUNTIME_PREFIXES):
            line = line.rpartition(" ")[0] + " @RUNTIME@\n"
        lines.append(line)
    return "".join(lines)


@pytest.fixture(scope="module", params=["as-configured", "every-block-deflated"])
def bodies(request):
    """Both formats of /metrics after one poll of every collector at ``FIXED_NOW``; once
    as the store keeps a small deployment's blocks (text), once with every collector block
    kept deflated, as at thousands of instances (``exporter.groups.PACK_ABOVE``)."""
    from exporter import groups

    pack = pytest.MonkeyPatch()
    if request.param == "every-block-deflated":
        pack.setattr(groups, "PACK_ABOVE", 1)
    request.addfinalizer(pack.undo)
    sim = Simulator(
        load_scenario(DEFAULT_SCENARIO),
        host="127.0.0.1",
        port=0,
        username="admin",
        password="admin-password",
        clock=SimClock(frozen_at=FIXED_NOW),
    )
    sim.start()
    # The certificate is made at start, so its thumbprint (a label of the server
    # certificate series) would differ on every run: report a fixed one instead.
    sim.state.api_thumbprint = "0123456789ABCDEF0123456789ABCDEF01234567"
    try:
        with serving_exporter(sim) as exp, pytest.MonkeyPatch.context() as patch:
            # Durations (collector runs, SPE calls) are the only values taken from the
            # machine's clock: pin them while polling. Threads' waits bound
            # time.monotonic at import and are not affected.
            patch.setattr(time, "monotonic", lambda: 1000.0)
            exp.poller.run_all_once()
            patch.undo()
            url = f"http://127.0.0.1:{exp.web.address[1]}/metrics"
            out = {}
            for fmt, (_, headers) in GOLDEN.items():
                response = requests.get(url, headers=headers, timeout=10)
                response.raise_for_status()
                out[fmt] = response.content.decode()
            return out
    finally:
        sim.stop()


@pytest.mark.parametrize("fmt", list(GOLDEN))
def test_metrics_equal_golden_file(bodies, fmt):
    path, _ = GOLDEN[fmt]
    body = bodies[fmt]
    if UPDATE:
        path.write_text(_placeholders(body))
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden"
    expected = path.read_text()
    body = _placeholders(body)
    if body != expected:
        # A readable first difference; the full diff comes from regenerating + git diff.
        got, want = body.splitlines(), expected.splitlines()
        for number, (a, b) in enumerate(zip(got, want, strict=False), 1):
            if a != b:
                pytest.fail(f"{path.name} line {number}:\n  want {b}\n  got  {a}")
        pytest.fail(f"{path.name}: {len(want)} lines expected, {len(got)} served")


def test_golden_run_polled_every_collector(bodies):
    """Every collector ran and succeeded, and each one's own series are in the body: the
    default scenario's instance without service provider access (initech) is skipped by
    the collectors SPE refuses, which is no failure (issue 11)."""
    from exporter.collectors import ALL_COLLECTORS

    text = bodies["text"]
    for name in ALL_COLLECTORS:
        line = f'mailstore_spe_collector_success{{target="simulator",collector="{name}"}} 1\n'
        assert line in text, name
    assert 'instance_id="initech",collector="users"' not in text
    assert ('mailstore_spe_instance_service_provider_access_enabled'
            '{target="simulator",instance_id="initech"} 0\n') in text
    assert text.count('instance_id="acme"') > 50
