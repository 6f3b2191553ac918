"""Collector health series, mailstore_spe_up and state-change logging."""

import logging

from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import assemble
from exporter.health import HealthTable


def _samples(health):
    body = assemble([health.blocks()], openmetrics=False).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in parse_text(body)
        for s in f.samples
    }


def _key(name, target="spe1", collector=None, **extra):
    labels = {"target": target, **extra}
    if collector:
        labels["collector"] = collector
    return (name, tuple(sorted(labels.items())))


def test_up_follows_the_management_server_collectors():
    h = HealthTable()
    h.configure("spe1", "service", 60, True)
    h.configure("spe1", "stores", 300, True)
    assert _samples(h)[_key("mailstore_spe_up")] == 0  # nothing known yet
    h.record_run("spe1", "service", success=True, duration=0.1, finished_at=10, error=None)
    assert _samples(h)[_key("mailstore_spe_up")] == 1
    # another collector failing does not make SPE "down"
    h.record_run("spe1", "stores", success=False, duration=0.1, finished_at=11, error="x")
    assert _samples(h)[_key("mailstore_spe_up")] == 1
    h.record_run("spe1", "service", success=False, duration=0.1, finished_at=12, error="down")
    assert _samples(h)[_key("mailstore_spe_up")] == 0


def test_collector_series_and_instance_outcomes():
    h = HealthTable()
    h.configure("spe1", "stores", 300, True)
    h.record_run(
        "spe1",
        "stores",
        success=True,
        duration=1.5,
        finished_at=100,
        error=None,
        instance_outcomes={"a": True},
    )
    h.record_run(
        "spe1",
        "stores",
        success=False,
        duration=2.5,
        finished_at=400,
        error="boom",
        instance_outcomes={"a": True, "b": False},
    )
    h.record_skip("spe1", "stores")
    s = _samples(h)
    assert s[_key("mailstore_spe_collector_success", collector="stores")] == 0
    assert s[_key("mailstore_spe_collector_duration_seconds", collector="stores")] == 2.5
    assert (
        s[_key("mailstore_spe_collector_last_success_timestamp_seconds", collector="stores")] == 100
    )
    assert s[_key("mailstore_spe_collector_interval_seconds", collector="stores")] == 300
    assert s[_key("mailstore_spe_collector_runs_skipped_total", collector="stores")] == 1
    assert (
        s[_key("mailstore_spe_instance_collect_success", collector="stores", instance_id="b")] == 0
    )
    assert (
        s[_key("mailstore_spe_instance_collect_success", collector="stores", instance_id="a")] == 1
    )
    assert h.snapshot()["spe1"]["stores"].error == "boom"


def test_one_log_line_per_state_change(caplog):
    h = HealthTable()
    h.configure("spe1", "stores", 300, True)
    with caplog.at_level(logging.INFO, logger="exporter.health"):
        for _ in range(5):
            h.record_run("spe1", "stores", success=False, duration=1, finished_at=1, error="e1")
        h.record_run("spe1", "stores", success=False, duration=1, finished_at=1, error="e2")
        for _ in range(3):
            h.record_run("spe1", "stores", success=True, duration=1, finished_at=2, error=None)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["collector failed", "collector failed", "collector recovered"]


def test_instance_outcome_block_is_reused_until_outcomes_change():
    h = HealthTable()
    h.configure("spe1", "stores", 300, True)
    h.configure("spe1", "service", 60, True)
    outcomes = {f"i{n}": True for n in range(100)}
    h.record_run("spe1", "stores", success=True, duration=1, finished_at=1,
                 error=None, instance_outcomes=outcomes)
    block = h.blocks()["mailstore_spe_instance_collect_success"]
    h.record_run("spe1", "service", success=True, duration=1, finished_at=2, error=None)
    h.record_skip("spe1", "stores")
    assert h.blocks()["mailstore_spe_instance_collect_success"] is block
    h.record_run("spe1", "stores", success=True, duration=1, finished_at=3,
                 error=None, instance_outcomes={"i1": False})
    changed = h.blocks()["mailstore_spe_instance_collect_success"]
    assert changed is not block and b'instance_id="i1",collector="stores"} 0' in changed


def test_instance_outcomes_of_a_removed_target_go_and_others_stay_in_order():
    h = HealthTable()
    for target in ("spe2", "spe1"):
        for collector in ("users", "stores"):
            h.configure(target, collector, 300, True)
            h.record_run(target, collector, success=True, duration=1, finished_at=1,
                         error=None, instance_outcomes={"b": True, "a": False})
    block = h.blocks()["mailstore_spe_instance_collect_success"].decode()
    order = [line.split("{", 1)[1].split("}")[0] for line in block.splitlines()]
    assert order == [
        f'target="{t}",instance_id="{i}",collector="{c}"'
        for t in ("spe1", "spe2") for c in ("stores", "users") for i in ("a", "b")
    ]
    h.remove_target("spe2")
    s = _samples(h)
    assert s[_key("mailstore_spe_instance_collect_success", collector="users",
                  instance_id="a")] == 0
    assert not [k for k in s if ("target", "spe2") in k[1]]
    h.remove_target("spe1")
    assert "mailstore_spe_instance_collect_success" not in h.blocks()


def _outcome_table(pack_above, monkeypatch):
    from exporter import groups

    monkeypatch.setattr(groups, "PACK_ABOVE", pack_above)
    h = HealthTable()
    for target in ("spe2", "spe1"):
        for collector in ("users", "stores", "jobs"):
            h.configure(target, collector, 300, True)
            outcomes = {f"i{n:03d}": n % 7 != 0 for n in range(50)}
            h.record_run(target, collector, success=True, duration=1, finished_at=1,
                         error=None, instance_outcomes=outcomes)
    return h


def test_large_instance_outcomes_are_kept_deflated_and_joined_without_inflating(monkeypatch):
    """At thousands of instances the outcome lines are MBs: kept deflated per (target,
    collector) and joined by concatenating the segments (no inflate, no recompress); the
    served lines are the same as kept as text, also after a target is removed."""
    import gzip

    from exporter.exposition import ExpositionCache
    from exporter.gzipstitch import DeflatedBlock

    plain, packed = (_outcome_table(n, monkeypatch) for n in (10**9, 1))
    block = packed.blocks()["mailstore_spe_instance_collect_success"]
    assert isinstance(block, DeflatedBlock) and block._text is None
    for _ in range(2):
        text = assemble([plain.blocks()], openmetrics=False)
        assert assemble([packed.blocks()], openmetrics=False) == text
        zipped = ExpositionCache(lambda: (1, [packed.blocks()])).body(
            openmetrics=False, gzipped=True
        )
        assert gzip.decompress(zipped.content) == text
        plain.remove_target("spe2")
        packed.remove_target("spe2")


def test_busy_while_any_run_is_in_progress_and_never_stuck_after_a_reload():
    """``busy()`` lets scrapes serve telemetry and health rendered a moment ago (issue 16):
    it must end with the runs, also for runs a reload retired (they record nothing)."""
    h = HealthTable()
    for collector in ("stores", "jobs"):
        h.configure("spe1", collector, 300, True)
    assert not h.busy()
    h.record_start("spe1", "stores", 1.0)
    h.record_start("spe1", "jobs", 1.0)
    assert h.busy()
    h.record_run("spe1", "stores", success=True, duration=1, finished_at=2, error=None)
    assert h.busy()
    h.configure("spe1", "jobs", 300, False)  # a reload disabled it; its run never records
    assert not h.busy()
    h.record_start("spe1", "stores", 3.0)
    h.remove_target("spe1")
    assert not h.busy()
