"""The snapshot store: atomic swaps, carry-over of failed instances, expiry."""

import gzip

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter import groups
from exporter.exposition import ExpositionCache, render_blocks
from exporter.gzipstitch import DeflatedBlock
from exporter.samples import Sample
from exporter.snapshot import CachedBlockSource, RunSink, SnapshotStore


@pytest.fixture(autouse=True, params=["small-blocks-as-text", "every-block-deflated"])
def packing(request, monkeypatch):
    """Every test here runs twice: as the store keeps small deployments (text) and with
    every block deflated, as it keeps the large blocks of thousands of instances."""
    if request.param == "every-block-deflated":
        monkeypatch.setattr(groups, "PACK_ABOVE", 1)
    return request.param


def _run(samples):
    """What a whole-target collector run puts into the scheduler's sink."""
    sink = RunSink()
    sink.put(samples)
    return sink


def _size(instance_id, value, target="spe1"):
    return Sample(
        "mailstore_spe_instance_archive_size_bytes",
        (("target", target), ("instance_id", instance_id)),
        value,
    )


def _values(store):
    body = ExpositionCache(store.collect).body(openmetrics=False, gzipped=False).content
    out = {}
    for family in parse_text(body.decode()):
        for s in family.samples:
            out[(s.name, s.labels.get("target"), s.labels.get("instance_id"))] = s.value
    return out


def test_swap_replaces_everything_of_the_collector():
    store = SnapshotStore()
    store.swap("spe1", "statistics", _run([_size("a", 1), _size("b", 2)]), 100.0)
    store.swap("spe1", "statistics", _run([_size("a", 5)]), 160.0)
    values = _values(store)
    assert values == {("mailstore_spe_instance_archive_size_bytes", "spe1", "a"): 5}


def test_failed_instance_keeps_its_previous_data_until_max_age():
    store = SnapshotStore()
    store.swap("spe1", "statistics", _run([_size("a", 1), _size("b", 2)]), 100.0)
    store.swap(
        "spe1", "statistics", _run([_size("a", 3)]), 160.0, failed_instances=["b"], max_age=180
    )
    assert _values(store)[("mailstore_spe_instance_archive_size_bytes", "spe1", "b")] == 2
    # b failed again, now its data (from t=100) is older than 180 s: dropped
    store.swap(
        "spe1", "statistics", _run([_size("a", 4)]), 290.0, failed_instances=["b"], max_age=180
    )
    assert ("mailstore_spe_instance_archive_size_bytes", "spe1", "b") not in _values(store)


def test_expire_drops_only_stale_groups():
    store = SnapshotStore()
    store.swap("spe1", "statistics", _run([_size("a", 1)]), 100.0)
    store.swap("spe2", "statistics", _run([_size("a", 9, target="spe2")]), 200.0)
    touched = store.expire(250.0, lambda target, collector: 100.0)
    assert touched == [("spe1", "statistics")]
    assert _values(store) == {("mailstore_spe_instance_archive_size_bytes", "spe2", "a"): 9}


def test_collectors_do_not_disturb_each_other():
    store = SnapshotStore()
    store.swap("spe1", "statistics", _run([_size("a", 1)]), 100.0)
    msg = Sample("mailstore_spe_instance_messages", (("target", "spe1"), ("instance_id", "a")), 7)
    store.swap("spe1", "other", _run([msg]), 100.0)
    store.drop("spe1", "other")
    assert _values(store) == {("mailstore_spe_instance_archive_size_bytes", "spe1", "a"): 1}


def test_version_changes_on_every_swap():
    store = SnapshotStore()
    v1, _ = store.collect()
    store.swap("spe1", "statistics", _run([_size("a", 1)]), 100.0)
    v2, _ = store.collect()
    assert v1 != v2


def _store_sample(instance_id, store_id, value):
    return Sample(
        "mailstore_spe_store_size_bytes",
        (("target", "spe1"), ("instance_id", instance_id), ("store_id", store_id),
         ("store_name", "s")),
        value,
    )


def test_kept_instance_data_is_exact_when_families_differ_between_instances():
    store = SnapshotStore()
    # "a" has two families, "b" only one, "c" only the other.
    first = [_size("a", 1), _store_sample("a", "1", 10), _store_sample("b", "1", 20),
             _size("c", 3)]
    store.swap("spe1", "stores", _run(first), 100.0)
    before = _values(store)
    store.swap("spe1", "stores", _run([_size("a", 7)]), 130.0, failed_instances=["b", "c"],
               max_age=600)
    after = _values(store)
    assert after[("mailstore_spe_instance_archive_size_bytes", "spe1", "a")] == 7
    assert ("mailstore_spe_store_size_bytes", "spe1", "a") not in after
    for key in before:
        if key[2] in ("b", "c"):
            assert after[key] == before[key]
    assert store.collected_at("spe1", "stores") == 130.0
    # Expiry drops the carried-over groups (collected at 100) and keeps "a".
    assert store.expire(760.0, lambda t, c: 650.0) == [("spe1", "stores")]
    assert set(_values(store)) == {("mailstore_spe_instance_archive_size_bytes", "spe1", "a")}


def test_listeners_run_after_each_change():
    store = SnapshotStore()
    calls = []
    store.add_listener(lambda: calls.append(store.collect()[0]))
    store.swap("spe1", "stores", _run([_size("a", 1)]), 100.0)
    store.expire(1000.0, lambda t, c: 10.0)
    store.drop("spe1")  # nothing left to drop: no call
    assert len(calls) == 2 and calls[0] != calls[1]


def test_run_sink_groups_by_instance_and_renders_each_instance_once():
    """A per-instance put is one group (duplicates dropped); a whole-target put is
    grouped by the samples' instance_id label (none: the target's own group)."""
    sink = RunSink()
    sink.put([_size("b", 2), _size("b", 2), _store_sample("b", "1", 20)], "b")
    sink.put([_size("a", 1), Sample("mailstore_spe_up", (("target", "spe1"),), 1)])
    groups = sink.writer.finish(100.0)
    assert groups.keys == ["", "a", "b"]
    assert groups.group(2)[1] == {
        "mailstore_spe_instance_archive_size_bytes":
            b'mailstore_spe_instance_archive_size_bytes{target="spe1",instance_id="b"} 2\n',
        "mailstore_spe_store_size_bytes": b'mailstore_spe_store_size_bytes{target="spe1",'
        b'instance_id="b",store_id="1",store_name="s"} 20\n',
    }
    assert groups.group(0)[1] == {"mailstore_spe_up": b'mailstore_spe_up{target="spe1"} 1\n'}


def test_large_blocks_are_kept_deflated_and_served_the_same_in_every_form(packing):
    store = SnapshotStore()
    store.swap("spe1", "statistics", _run([_size("a", 1), _size("b", 2)]), 100.0)
    store.swap(
        "spe1", "statistics", _run([_size("a", 3)]), 160.0, failed_instances=["b"], max_age=180
    )
    (blocks,) = store.collect()[1]
    kinds = {type(block) for block in blocks.values()}
    assert kinds == ({DeflatedBlock} if packing == "every-block-deflated" else {bytes})
    cache = ExpositionCache(store.collect)
    text = cache.body(openmetrics=False, gzipped=False).content
    assert b'instance_id="a"} 3\n' in text and b'instance_id="b"} 2\n' in text
    assert gzip.decompress(cache.body(openmetrics=False, gzipped=True).content) == text
    unpacked = SnapshotStore(pack=False)
    unpacked.swap("spe1", "statistics", _run([_size("a", 3), _size("b", 2)]), 160.0)
    assert ExpositionCache(unpacked.collect).body(openmetrics=False, gzipped=False).content == text


class _Up(CachedBlockSource):
    """A block source like health: ``set`` changes its one series."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def set(self, value):
        with self._lock:
            self.value = value
            self._version += 1

    def _render_blocks(self):
        return render_blocks([Sample("mailstore_spe_up", (("target", "spe1"),), self.value)])


def test_collect_data_and_collect_sources_answer_from_cache_until_something_moves():
    """Every scrape calls both (the app's wiring): an unchanged store answers with the same
    pair (no lock, no sorting, no rendering), and every kind of change is seen at once."""
    store = SnapshotStore()
    up = _Up(1)
    cache = ExpositionCache(store.collect_data, head=store.collect_sources)

    def values():
        body = cache.body(openmetrics=False, gzipped=True).content
        return {
            (s.name, s.labels.get("instance_id")): s.value
            for family in parse_text(gzip.decompress(body).decode())
            for s in family.samples
        }

    store.swap("spe1", "statistics", _run([_size("a", 1), _size("b", 2)]), 100.0)
    assert store.collect_data() is store.collect_data()
    assert store.collect_sources() is store.collect_sources()
    assert values() == {("mailstore_spe_instance_archive_size_bytes", "a"): 1,
                        ("mailstore_spe_instance_archive_size_bytes", "b"): 2}
    store.add_source(up)
    assert values()[("mailstore_spe_up", None)] == 1
    up.set(0)  # the source moved, not the store
    assert values()[("mailstore_spe_up", None)] == 0
    pair = store.collect_sources()
    assert store.collect_sources() is pair
    store.swap("spe1", "statistics", _run([_size("a", 5)]), 160.0)
    assert values() == {("mailstore_spe_instance_archive_size_bytes", "a"): 5,
                        ("mailstore_spe_up", None): 0}
    store.swap("spe1", "stores", _run([_size("c", 7)]), 170.0)
    assert values()[("mailstore_spe_instance_archive_size_bytes", "c")] == 7
    store.expire(400.0, lambda target, collector: 1000 if collector == "stores" else 100)
    assert ("mailstore_spe_instance_archive_size_bytes", "a") not in values()
    store.drop("spe1", "stores")
    assert values() == {("mailstore_spe_up", None): 0}
    store.remove_source(up)
    assert values() == {}
