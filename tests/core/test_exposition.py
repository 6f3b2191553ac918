"""Rendering and caching of the exposition (text 0.0.4 and OpenMetrics)."""

import gzip
import subprocess

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import (
    ExpositionCache,
    assemble,
    format_value,
    render_blocks,
    render_sample,
    wants_gzip,
    wants_openmetrics,
)
from exporter.metricdefs import FAMILIES, family_of
from exporter.samples import Sample

T = ("target", "spe1")


def _samples():
    return [
        Sample("mailstore_spe_instance_messages", (T, ("instance_id", "acme")), 12423896),
        Sample("mailstore_spe_instance_messages", (T, ("instance_id", 'we"ird\\')), 3),
        Sample("mailstore_spe_api_requests_total", (T, ("function", "GetStores")), 7),
        Sample("mailstore_spe_up", (T,), 1),
    ]


def test_text_format_parses_and_keeps_values():
    body = assemble([render_blocks(_samples())], openmetrics=False).decode()
    families = {f.name: f for f in parse_text(body)}
    assert families["mailstore_spe_instance_messages"].type == "gauge"
    values = {
        s.labels["instance_id"]: s.value
        for s in families["mailstore_spe_instance_messages"].samples
    }
    assert values == {"acme": 12423896, 'we"ird\\': 3}
    # counters: TYPE line named after the sample in the 0.0.4 format
    assert "# TYPE mailstore_spe_api_requests_total counter" in body
    assert families["mailstore_spe_api_requests"].samples[0].value == 7


def test_openmetrics_format_parses_and_ends_with_eof():
    body = assemble([render_blocks(_samples())], openmetrics=True).decode()
    assert body.endswith("# EOF\n")
    assert "# TYPE mailstore_spe_api_requests counter" in body
    families = {f.name: f for f in parse_openmetrics(body)}
    assert families["mailstore_spe_api_requests"].samples[0].value == 7
    assert families["mailstore_spe_up"].samples[0].value == 1


def test_samples_of_one_family_from_several_sources_are_contiguous():
    a = render_blocks([Sample("mailstore_spe_up", (("target", "a"),), 1)])
    b = render_blocks(
        [
            Sample("mailstore_spe_instance_messages", (("target", "b"), ("instance_id", "x")), 1),
            Sample("mailstore_spe_up", (("target", "b"),), 0),
        ]
    )
    body = assemble([a, b], openmetrics=False).decode()
    lines = [line for line in body.splitlines() if line.startswith("mailstore_spe_up")]
    assert lines == ['mailstore_spe_up{target="a"} 1', 'mailstore_spe_up{target="b"} 0']
    assert body.count("# TYPE mailstore_spe_up gauge") == 1
    families = [f.name for f in parse_text(body)]
    assert len(families) == len(set(families))


def test_render_blocks_escapes_every_pair_and_matches_render_sample():
    # render_blocks formats each distinct (name, value) pair once per batch; a pair seen
    # first unescaped must not leak into a later sample with a different value.
    samples = [
        *_samples(),
        Sample("mailstore_spe_instance_messages", (T, ("instance_id", "a\\nb")), 1),
        Sample("mailstore_spe_instance_messages", (T, ("instance_id", "a\\nb")), 2),
        Sample("mailstore_spe_instance_messages", (T, ("instance_id", "line\nbreak")), 2.5),
    ]
    blocks = render_blocks(samples)
    assert blocks["mailstore_spe_instance_messages"] == (
        b'mailstore_spe_instance_messages{target="spe1",instance_id="acme"} 12423896\n'
        b'mailstore_spe_instance_messages{target="spe1",instance_id="we\\"ird\\\\"} 3\n'
        b'mailstore_spe_instance_messages{target="spe1",instance_id="a\\\\nb"} 1\n'
        b'mailstore_spe_instance_messages{target="spe1",instance_id="a\\\\nb"} 2\n'
        b'mailstore_spe_instance_messages{target="spe1",instance_id="line\\nbreak"} 2.5\n'
    )
    for family, block in blocks.items():
        expected = "".join(render_sample(s) for s in samples if family_of(s.name).name == family)
        assert block == expected.encode()


def test_format_value():
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("nan")) == "NaN"
    assert format_value(1e20) == "1e+20"


def test_cache_reassembles_only_when_version_changes():
    calls = []
    state = {"version": 1, "blocks": [render_blocks(_samples())]}

    def collect():
        calls.append(1)
        return state["version"], state["blocks"]

    cache = ExpositionCache(collect)
    first = cache.body(openmetrics=False, gzipped=False)
    again = cache.body(openmetrics=False, gzipped=False)
    assert first.content is again.content  # served from the cache
    state["version"] = 2
    state["blocks"] = [render_blocks([Sample("mailstore_spe_up", (T,), 0)])]
    third = cache.body(openmetrics=False, gzipped=False)
    assert b'mailstore_spe_up{target="spe1"} 0' in third.content
    zipped = cache.body(openmetrics=False, gzipped=True)
    assert zipped.gzipped and gzip.decompress(zipped.content) == third.content


def test_negotiation():
    assert wants_openmetrics("application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert wants_openmetrics(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"
    )
    assert not wants_openmetrics("text/plain; version=0.0.4")
    assert not wants_openmetrics("application/openmetrics-text; q=0")
    assert not wants_openmetrics(None)
    assert wants_gzip("gzip, deflate")
    assert not wants_gzip("gzip;q=0")
    assert not wants_gzip("identity")


def test_promtool_accepts_the_text_format(promtool):
    body = assemble([render_blocks(_samples())], openmetrics=False)
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def test_crc32_combine_matches_zlib():
    import os
    import zlib

    from exporter.gzipstitch import crc32_combine

    a, b = os.urandom(1000), os.urandom(300_001)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b""), 0) == zlib.crc32(a)
    assert crc32_combine(0, zlib.crc32(b), len(b)) == zlib.crc32(b)


def _big_blocks(instances, target="spe1"):
    # Large blocks (over the CRC combine threshold) and small ones, several sources.
    return render_blocks(
        Sample(
            "mailstore_spe_instance_messages",
            (("target", target), ("instance_id", f"tenant{i:05d}")),
            i,
        )
        for i in range(instances)
    )


def test_stitched_gzip_body_equals_the_plain_body_in_both_formats():
    sources = [
        _big_blocks(8000),
        _big_blocks(3, target="spe2"),
        render_blocks(_samples()),
    ]
    cache = ExpositionCache(lambda: (1, sources))
    cache.prepare()
    for openmetrics in (False, True):
        plain = cache.body(openmetrics=openmetrics, gzipped=False)
        assert plain.content == assemble(sources, openmetrics=openmetrics)
        assert plain.length == len(plain.content)
        zipped = cache.body(openmetrics=openmetrics, gzipped=True)
        assert zipped.length == len(zipped.content)
        assert gzip.decompress(zipped.content) == plain.content


def test_body_shares_the_sources_blocks_and_compresses_a_block_once(monkeypatch):
    import exporter.gzipstitch as gzipstitch

    big = _big_blocks(5000)
    state = {"version": 1, "blocks": [big, render_blocks(_samples())]}
    cache = ExpositionCache(lambda: (state["version"], state["blocks"]))
    cache.prepare()
    plain = cache.body(openmetrics=False, gzipped=False)
    block = big["mailstore_spe_instance_messages"]
    assert any(part is block for part in plain.parts)  # served, not copied

    compressed = []
    real = gzipstitch.deflate_segment

    def counting(data):
        compressed.append(len(data))
        return real(data)

    monkeypatch.setattr(gzipstitch, "deflate_segment", counting)
    # A small source changes (telemetry during a poll): only it is compressed again.
    state["version"] = 2
    state["blocks"] = [big, render_blocks(_samples()[:1])]
    zipped = cache.body(openmetrics=False, gzipped=True)
    assert compressed and max(compressed) < 1000
    assert gzip.decompress(zipped.content) == assemble(state["blocks"], openmetrics=False)


def _runtime_blocks(value):
    return render_blocks([
        Sample("process_resident_memory_bytes", (), value),
        Sample("python_gc_collections_total", (("generation", "0"),), value),
    ])


def _count_prefix_builds(cache, monkeypatch) -> list:
    """A list that grows by one each time ``cache`` builds the cached part of a body."""
    prefixes = []
    real_build_prefix = cache._build_middle

    def counting_build_prefix(*args, **kwargs):
        prefixes.append(kwargs)
        return real_build_prefix(*args, **kwargs)

    monkeypatch.setattr(cache, "_build_middle", counting_build_prefix)
    return prefixes


def test_a_tail_change_re_renders_only_the_end_of_the_cached_body(monkeypatch):
    """The exporter's own process series (the tail) move all the time: serving them must
    not rebuild the rest of the body, in any of the four forms, and the body must equal
    the one assembled from everything."""
    sources = [_big_blocks(8000), render_blocks(_samples())]
    tail = {"version": 1, "blocks": _runtime_blocks(1)}
    cache = ExpositionCache(lambda: (7, sources), tail=lambda: (tail["version"], tail["blocks"]))
    cache.prepare()
    prefixes = _count_prefix_builds(cache, monkeypatch)
    forms = [(om, gz) for om in (False, True) for gz in (False, True)]
    for value, version in ((1, 1), (2, 2), (2, 2), (3, 3)):
        tail["version"], tail["blocks"] = version, _runtime_blocks(value)
        for openmetrics, gzipped in forms:
            body = cache.body(openmetrics=openmetrics, gzipped=gzipped)
            content = gzip.decompress(body.content) if gzipped else body.content
            assert content == assemble([*sources, tail["blocks"]], openmetrics=openmetrics)
            assert body.length == len(body.content)
    assert len(prefixes) == len(forms)  # built once per form, whatever the tail did
    first = cache.body(openmetrics=False, gzipped=True)
    assert cache.body(openmetrics=False, gzipped=True) is first  # nothing moved: a hit
    big_block = sources[0]["mailstore_spe_instance_messages"]
    tail["version"] = 4
    plain = cache.body(openmetrics=False, gzipped=False)
    assert any(part is big_block for part in plain.parts)  # the prefix is reused, not copied


def _health_blocks(value):
    return render_blocks([Sample("mailstore_spe_up", (("target", "spe1"),), value)])


def test_a_head_change_re_renders_only_the_start_of_the_cached_body(monkeypatch):
    """Telemetry and health (the head) change with every API call of a poll: a scrape
    then must not rebuild the collectors' data (issue 16), in any of the four forms, and
    the body must equal the one assembled from everything."""
    middle = [_big_blocks(8000), render_blocks(_samples()[:2])]
    head = {"version": 1, "blocks": [_health_blocks(1)]}
    tail = {"version": 1, "blocks": _runtime_blocks(1)}
    cache = ExpositionCache(
        lambda: (7, middle),
        tail=lambda: (tail["version"], tail["blocks"]),
        head=lambda: (head["version"], head["blocks"]),
    )
    cache.prepare()
    prefixes = _count_prefix_builds(cache, monkeypatch)
    forms = [(om, gz) for om in (False, True) for gz in (False, True)]
    for value in (1, 2, 2, 3):
        head["version"], head["blocks"] = value, [_health_blocks(value)]
        tail["version"], tail["blocks"] = value, _runtime_blocks(value)
        for openmetrics, gzipped in forms:
            body = cache.body(openmetrics=openmetrics, gzipped=gzipped)
            content = gzip.decompress(body.content) if gzipped else body.content
            everything = [*head["blocks"], *middle, tail["blocks"]]
            assert content == assemble(everything, openmetrics=openmetrics)
            assert body.length == len(body.content)
    assert len(prefixes) == len(forms)  # the middle is built once per form


def test_a_head_that_does_not_come_first_is_built_with_the_rest():
    """A head family after one of the middle's would put the start out of FAMILIES order:
    then the body is built as one, and stays the same as assembling everything."""
    middle = [render_blocks([Sample("mailstore_spe_up", (("target", "spe1"),), 1)])]
    head_blocks = [_big_blocks(10, target="spe2")]  # a family after mailstore_spe_up
    cache = ExpositionCache(lambda: (1, middle), head=lambda: (1, head_blocks))
    for openmetrics in (False, True):
        for gzipped in (False, True):
            body = cache.body(openmetrics=openmetrics, gzipped=gzipped)
            content = gzip.decompress(body.content) if gzipped else body.content
            assert content == assemble([*head_blocks, *middle], openmetrics=openmetrics)


def test_a_changed_head_of_many_small_families_is_compressed_in_one_piece(monkeypatch):
    """Every call into zlib gives the interpreter lock away, and during a busy poll each
    one costs the scrape a thread switch (issue 16): the small head and tail blocks a
    scrape re-renders are joined and compressed once each, not family by family."""
    from exporter import gzipstitch

    names = [n for n, f in FAMILIES.items() if f.type == "gauge"][:12]
    head_blocks = [render_blocks([Sample(n, (("target", "spe1"),), 1)]) for n in names]
    middle = [_big_blocks(8000)]
    version = {"head": 1}
    cache = ExpositionCache(
        lambda: (1, middle), head=lambda: (version["head"], head_blocks)
    )
    cache.prepare()
    cache.body(openmetrics=False, gzipped=True)  # the middle is built and cached
    calls = []
    real = gzipstitch.deflate_segment
    monkeypatch.setattr(
        gzipstitch, "deflate_segment", lambda data: calls.append(len(data)) or real(data)
    )
    version["head"] = 2  # re-rendered: new block objects, none compressed yet
    head_blocks[:] = [render_blocks([Sample(n, (("target", "spe1"),), 2)]) for n in names]
    body = cache.body(openmetrics=False, gzipped=True)
    assert gzip.decompress(body.content) == assemble([*head_blocks, *middle], openmetrics=False)
    assert len(calls) <= 2, calls  # the head in one piece, the (empty) tail


def test_a_hit_of_an_unchanged_exporter_builds_nothing(monkeypatch):
    """A scrape of an unchanged exporter compares the three versions and returns the body
    it served last (issue 16: the per-scrape work, ordering checks included, was most of a
    gzip scrape's cost against a raw socket); any version that moves is a miss."""
    import exporter.exposition as exposition

    middle = [_big_blocks(50), render_blocks(_samples()[:2])]
    head = {"version": 1, "blocks": [_health_blocks(1)]}
    tail = {"version": 1, "blocks": _runtime_blocks(1)}
    data = {"version": 7}
    cache = ExpositionCache(
        lambda: (data["version"], middle),
        tail=lambda: (tail["version"], tail["blocks"]),
        head=lambda: (head["version"], head["blocks"]),
    )
    forms = [(om, gz) for om in (False, True) for gz in (False, True)]
    first = {form: cache.body(openmetrics=form[0], gzipped=form[1]) for form in forms}
    builds = []
    real_join = exposition._join
    monkeypatch.setattr(exposition, "_join", lambda *a: builds.append(a) or real_join(*a))
    monkeypatch.setattr(cache, "_first_family", lambda *a: pytest.fail("checked on a hit"))
    for form in forms:
        assert cache.body(openmetrics=form[0], gzipped=form[1]) is first[form]
    assert builds == []
    monkeypatch.undo()
    monkeypatch.setattr(exposition, "_join", lambda *a: builds.append(a) or real_join(*a))
    for moved in (data, head, tail):
        moved["version"] += 1
        for openmetrics, gzipped in forms:
            body = cache.body(openmetrics=openmetrics, gzipped=gzipped)
            content = gzip.decompress(body.content) if gzipped else body.content
            everything = [*head["blocks"], *middle, tail["blocks"]]
            assert content == assemble(everything, openmetrics=openmetrics)
            assert cache.body(openmetrics=openmetrics, gzipped=gzipped) is body
    assert len(builds) == 3 * len(forms)


class _Sources:
    """A middle, head and tail whose versions and blocks a test moves, and counts of how
    often the cache asked for each one's blocks (i.e. rendered it)."""

    def __init__(self):
        self.versions = {"data": 1, "head": 1, "tail": 1}
        self.asked = {"data": 0, "head": 0, "tail": 0}
        self.busy = True

    def blocks(self, name):
        value = self.versions[name]
        if name == "head":
            return [_health_blocks(value)]
        if name == "tail":
            return _runtime_blocks(value)
        return [_big_blocks(20 + value)]

    def cache(self):
        def source(name):
            def get():
                self.asked[name] += 1
                return self.versions[name], self.blocks(name)
            return get

        return ExpositionCache(
            source("data"), head=source("head"), tail=source("tail"),
            busy=lambda: self.busy,
            head_version=lambda: self.versions["head"],
            tail_version=lambda: self.versions["tail"],
        )

    def expected(self, openmetrics=False):
        everything = [*self.blocks("head"), *self.blocks("data"), self.blocks("tail")]
        return assemble(everything, openmetrics=openmetrics)


def _content(body):
    return gzip.decompress(body.content) if body.gzipped else body.content


def test_with_the_refresher_a_scrape_during_a_poll_joins_prepared_pieces_only():
    """Issue 16: while collector runs are in progress a scrape renders nothing itself: it
    serves the start and end the refresher rendered (up to HEAD_LAG_SECONDS old) and the
    middle ``prepare`` built in the poll's thread; the refresher then catches up."""
    src = _Sources()
    cache = src.cache()
    cache.start_refresher(interval=3600)  # refreshed by hand below
    try:
        for gzipped in (False, True):
            assert _content(cache.body(openmetrics=False, gzipped=gzipped)) == src.expected()
        old = src.expected()
        asked = {name: src.asked[name] for name in ("head", "tail")}
        src.versions["head"] += 1
        src.versions["tail"] += 1
        for gzipped in (False, True):
            assert _content(cache.body(openmetrics=False, gzipped=gzipped)) == old
        # nothing rendered by the scrapes (the collectors' data is asked every time: in
        # the exporter that is a cached answer, SnapshotStore.collect_data)
        assert {name: src.asked[name] for name in ("head", "tail")} == asked
        cache.refresh()
        for gzipped in (False, True):
            assert _content(cache.body(openmetrics=False, gzipped=gzipped)) == src.expected()
        # New collector data is never served late: prepare() (the poll's thread) builds
        # the new middle, or the scrape that comes first does.
        src.versions["data"] += 1
        cache.refresh()
        assert _content(cache.body(openmetrics=False, gzipped=True)) == src.expected()
        src.versions["data"] += 1
        cache.refresh()
        cache.prepare()
        assert _content(cache.body(openmetrics=False, gzipped=True)) == src.expected()
    finally:
        cache.stop_refresher()


def test_at_rest_or_past_the_lag_a_scrape_renders_what_changed_itself(monkeypatch):
    import exporter.exposition as exposition

    src = _Sources()
    cache = src.cache()
    cache.start_refresher(interval=3600)
    try:
        cache.body(openmetrics=True, gzipped=True)
        src.busy = False  # no collector run in progress: exact, whatever was prepared
        src.versions["head"] += 1
        src.versions["data"] += 1
        assert _content(cache.body(openmetrics=True, gzipped=True)) == src.expected(True)
        src.busy = True
        monkeypatch.setattr(exposition, "HEAD_LAG_SECONDS", 0.0)
        monkeypatch.setattr(exposition, "TAIL_LAG_SECONDS", 0.0)
        for name in src.versions:
            src.versions[name] += 1
        assert _content(cache.body(openmetrics=True, gzipped=True)) == src.expected(True)
    finally:
        cache.stop_refresher()
    # Without a refresher nothing ever lags (tests, tools: exact bodies).
    src.versions["head"] += 1
    assert _content(cache.body(openmetrics=True, gzipped=True)) == src.expected(True)


def test_a_body_never_shows_health_newer_than_the_collectors_data():
    """A poll swaps a run's data in, then records the run's health. A scrape that read the
    data first and the health after could show "collector succeeded" with the run's data
    missing, and the shipped rules would resolve an alert that must keep firing (issue 11).
    Here every read of the data is followed at once by another run completing."""
    state = {"run": 1}

    def data():
        shown = state["run"]
        state["run"] += 1  # the next run's swap and record_run happen right after
        return shown, [_big_blocks(10 + shown)]

    def head():
        return state["run"], [_health_blocks(state["run"])]

    for refresher in (False, True):
        cache = ExpositionCache(
            data, head=head, busy=lambda: True, head_version=lambda: state["run"]
        )
        if refresher:
            cache.start_refresher(interval=0.001)
        try:
            for _ in range(50):
                text = _content(cache.body(openmetrics=False, gzipped=bool(_ % 2))).decode()
                up = int(text.split("mailstore_spe_up{target=\"spe1\"} ")[1].split()[0])
                rows = text.count("mailstore_spe_instance_messages{")
                assert up <= rows - 10, (refresher, up, rows)
        finally:
            cache.stop_refresher()
