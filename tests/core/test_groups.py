"""GroupWriter / GroupBlocks: per-instance lines merged into one block per family."""

from __future__ import annotations

import random
import threading

import pytest

from exporter.groups import GroupWriter, merge_groups


def _blocks(key: str) -> dict[str, bytes]:
    # Not every group has every family; "b" has none of family y.
    blocks = {"x": f'x{{i="{key}"}} 1\n'.encode()}
    if key != "b":
        blocks["y"] = f'y{{i="{key}"}} 2\ny{{i="{key}",n="2"}} 3\n'.encode()
    return blocks


def test_groups_added_in_any_order_from_threads_come_out_sorted_by_key():
    keys = [f"inst-{n:04d}" for n in range(300)] + ["b"]
    random.Random(7).shuffle(keys)
    writer = GroupWriter()
    chunks = [keys[i::4] for i in range(4)]
    threads = [
        threading.Thread(
            target=lambda part: [writer.add(k, _blocks(k)) for k in part], args=(part,)
        )
        for part in chunks
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    groups = writer.finish(50.0)
    ordered = sorted(keys)
    assert groups.keys == ordered
    assert groups.merged["x"] == b"".join(_blocks(k)["x"] for k in ordered)
    assert groups.merged["y"] == b"".join(_blocks(k).get("y", b"") for k in ordered)
    for index, key in enumerate(groups.keys):
        assert groups.group(index) == (50.0, _blocks(key))


def test_explicit_collection_times_are_kept_and_missing_ones_filled():
    writer = GroupWriter()
    writer.add("old", _blocks("old"), at=10.0)
    writer.add("new", _blocks("new"))
    groups = writer.finish(99.0)
    assert dict(zip(groups.keys, groups.at, strict=True)) == {"new": 99.0, "old": 10.0}


def test_a_group_added_twice_is_an_error_naming_it():
    writer = GroupWriter()
    writer.add("acme", _blocks("acme"))
    writer.add("acme", _blocks("acme"))
    with pytest.raises(ValueError, match=r"more than once: \['acme'\]"):
        writer.finish(1.0)


def test_the_writer_is_closed_after_finish():
    writer = GroupWriter()
    writer.finish(1.0)
    with pytest.raises(RuntimeError):
        writer.add("late", _blocks("late"))


def test_empty_chunks_and_empty_writers():
    writer = GroupWriter()
    writer.add("a", {"x": b""})
    groups = writer.finish(1.0)
    assert groups.keys == ["a"] and groups.merged == {} and groups.group(0) == (1.0, {})
    assert GroupWriter().finish(1.0).keys == []


def test_plus_adds_and_replaces_groups_keeping_times():
    base = merge_groups({"a": (1.0, _blocks("a")), "c": (1.0, _blocks("c"))})
    both = base.plus({"b": (0.5, _blocks("b")), "c": (2.0, {"x": b"x 9\n"})})
    assert both.keys == ["a", "b", "c"]
    assert both.group(1) == (0.5, _blocks("b"))
    assert both.group(2) == (2.0, {"x": b"x 9\n"})
    assert base.keys == ["a", "c"]  # the original is unchanged


def test_packed_families_are_deflated_straight_from_the_write_buffers(monkeypatch):
    from exporter import gzipstitch
    from exporter.gzipstitch import DeflatedBlock

    monkeypatch.setattr(gzipstitch, "_DEFLATE_CHUNK", 64)  # many chunks per block
    keys = [f"inst-{n:04d}" for n in range(400)]
    writer = GroupWriter()
    for key in reversed(keys):
        writer.add(key, _blocks(key))
    packed = writer.finish(5.0, pack=True)
    plain = merge_groups({k: (5.0, _blocks(k)) for k in keys})
    assert packed.packed and not plain.packed
    assert all(isinstance(block, DeflatedBlock) for block in packed.merged.values())
    for family, block in packed.merged.items():
        assert len(block) == len(plain.merged[family])
        assert block.inflate() == plain.merged[family]
    assert packed.select(lambda key, _at: key in ("inst-0007", "inst-0399")) == {
        "inst-0007": (5.0, _blocks("inst-0007")), "inst-0399": (5.0, _blocks("inst-0399"))
    }
    both = packed.plus({"b": (1.0, _blocks("b"))})
    assert both.packed and isinstance(both.merged["x"], DeflatedBlock)
    assert both.group(0) == (1.0, _blocks("b"))


def test_small_families_stay_text_when_packing():
    writer = GroupWriter()
    writer.add("a", _blocks("a"))
    packed = writer.finish(1.0, pack=True)
    assert packed.merged == {"x": _blocks("a")["x"], "y": _blocks("a")["y"]}


def test_spooled_runs_give_the_same_blocks_in_any_arrival_order(monkeypatch):
    from exporter import groups as groups_module
    from exporter.gzipstitch import DeflatedBlock

    monkeypatch.setattr(groups_module, "SPOOL_BYTES", 100)  # a part every few groups
    keys = [f"inst-{n:04d}" for n in range(300)]
    arrivals = {
        "in key order": list(keys),
        "nearly in order": [keys[i ^ 1] for i in range(len(keys))],
        "reversed": list(reversed(keys)),
        "shuffled": random.Random(3).sample(keys, len(keys)),
    }
    plain = merge_groups({k: (7.0, _blocks(k)) for k in keys})
    for name, arrival in arrivals.items():
        for pack in (False, True):
            writer = GroupWriter(spool=True)
            for key in arrival:
                writer.add(key, _blocks(key))
            assert len(writer._families["x"].spools) > 10, name  # really spooled
            groups = writer.finish(7.0, pack=pack)
            assert groups.keys == keys, name
            for family, block in groups.merged.items():
                assert isinstance(block, DeflatedBlock) == pack, (name, family)
                text = block.inflate() if pack else block
                assert text == plain.merged[family], (name, family, pack)
            assert list(groups.ends["y"]) == list(plain.ends["y"]), name
