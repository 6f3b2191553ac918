"""exporter.runtime: the exporter's own process_* and python_* series, and build revision."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter import revision as revision_module
from exporter.exposition import assemble
from exporter.metricdefs import FAMILIES, RUNTIME_DEFS
from exporter.runtime import RuntimeMetrics, runtime_registry
from tests.integration.helpers import metric_values

REPO = Path(__file__).resolve().parents[2]


def test_families_match_what_prometheus_client_collects():
    collected = {m.name: m for m in runtime_registry().collect()}
    for name, family in RUNTIME_DEFS.items():
        assert name in collected, f"{name}: prometheus_client no longer collects it"
        metric = collected[name]
        assert (metric.type, metric.documentation) == (family.type, family.help), name
        for sample in metric.samples:
            assert set(sample.labels) == set(family.labels), name
        assert FAMILIES[name] is family


def test_the_series_describe_this_process():
    body = assemble([RuntimeMetrics().blocks()], openmetrics=False).decode()
    values = metric_values(body)
    assert values[("process_resident_memory_bytes", ())] > 10 * 1024 * 1024
    with open("/proc/self/stat") as stat:  # field 22: start time in clock ticks since boot
        ticks = int(stat.read().rpartition(")")[2].split()[19])
    with open("/proc/stat") as stat:
        boot = next(int(line.split()[1]) for line in stat if line.startswith("btime"))
    started = boot + ticks / os.sysconf("SC_CLK_TCK")
    assert values[("process_start_time_seconds", ())] == pytest.approx(started, abs=1)
    assert 0 < values[("process_open_fds", ())] < values[("process_max_fds", ())]
    assert values[("process_cpu_seconds_total", ())] > 0
    gc_key = ("python_gc_collections_total", (("generation", "0"),))
    assert gc_key in values
    info = [key for key in values if key[0] == "python_info"]
    assert dict(info[0][1])["implementation"] and values[info[0]] == 1
    assert "# TYPE process_cpu_seconds_total counter" in body


def test_values_refresh_at_most_every_refresh_period():
    now = [100.0]
    calls = []

    class CountingRegistry(CollectorRegistry):
        def collect(self):
            calls.append(now[0])
            return runtime_registry().collect()

    source = RuntimeMetrics(CountingRegistry(), clock=lambda: now[0], refresh_seconds=5)
    first = source.blocks()
    version = source.version()
    now[0] = 104.0
    assert source.version() == version and source.blocks() is first
    now[0] = 105.0
    assert source.version() != version and source.blocks() is not first
    assert calls == [100.0, 105.0]


def test_on_a_platform_without_proc_only_the_python_series_are_served(monkeypatch, tmp_path):
    # As on Windows/macOS: ProcessCollector finds no /proc and yields nothing.
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry, proc=str(tmp_path / "no-proc"))
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    body = assemble([RuntimeMetrics(registry).blocks()], openmetrics=False).decode()
    assert "process_" not in body and "python_gc_collections_total" in body


def test_the_exporter_serves_them(simulator_exporter_body):
    values = metric_values(simulator_exporter_body)
    assert values[("process_resident_memory_bytes", ())] > 0
    build = [key for key in values if key[0] == "mailstore_spe_exporter_build_info"]
    assert dict(build[0][1])["revision"] == revision_module.revision()
    assert 'mailstore_spe_exporter_build_info{version="' in simulator_exporter_body


@pytest.fixture
def simulator_exporter_body():
    from exporter.app import Exporter
    from exporter.config import demo_config

    exp = Exporter(demo_config("https://127.0.0.1:9", "admin", "x", None))
    return exp.exposition.body(openmetrics=False, gzipped=False).content.decode()


# --- revision ---------------------------------------------------------------------------------


@pytest.fixture
def fresh_revision(monkeypatch, tmp_path):
    revision_module.revision.cache_clear()
    monkeypatch.delenv(revision_module.ENV_VAR, raising=False)
    monkeypatch.setattr(revision_module, "REVISION_FILE", tmp_path / "REVISION")
    yield revision_module
    revision_module.revision.cache_clear()


def test_revision_from_the_environment_wins(fresh_revision, monkeypatch):
    fresh_revision.REVISION_FILE.write_text("b" * 40 + "\n")
    monkeypatch.setenv(fresh_revision.ENV_VAR, "A" * 40)
    assert fresh_revision.revision() == "a" * 40


def test_revision_from_the_file_written_at_build_time(fresh_revision):
    fresh_revision.REVISION_FILE.write_text("b" * 40 + "\n")
    assert fresh_revision.revision() == "b" * 40


def test_revision_of_a_git_checkout(fresh_revision):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert fresh_revision.revision() == head


def test_revision_unknown_and_garbage_ignored(fresh_revision, monkeypatch, tmp_path):
    monkeypatch.setenv(fresh_revision.ENV_VAR, "not a commit; rm -rf /")
    fresh_revision.REVISION_FILE.write_text("also not\n")
    monkeypatch.setattr(fresh_revision, "git_head", lambda directory: None)
    assert fresh_revision.revision() == "unknown"
    assert fresh_revision.git_head(tmp_path) is None  # not a checkout
