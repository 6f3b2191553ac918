"""Rendered lines of many groups (instances), kept as one byte block per metric family.

A collector run over thousands of instances renders each instance in the worker that
fetched it. ``GroupWriter.add`` copies those lines into one growing buffer per family at
once, so the instance's own small objects (a dict of short byte strings) die right away
instead of living until the run ends. That matters more than their size suggests:
thousands of small objects that outlive a stretch of a poll are spread over CPython's
memory arenas, and a single survivor keeps a whole arena from being returned (measured:
about 20 MB of free-but-held arena space at 2000 instances; benchmarks/RESULTS.md).

``GroupWriter.finish`` orders the groups by key (stable output, whatever order the
workers finished in) and makes the immutable ``GroupBlocks`` that the snapshot store and
the exposition share: one ``bytes`` per family plus where each group's lines end.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from exporter.gzipstitch import Block, DeflatedBlock, deflate_pieces

Blocks = dict[str, Block]  # family -> rendered lines (same as exposition.Blocks)

# With ``pack``, families with at least this much text are kept deflated (DeflatedBlock);
# smaller ones stay text: compressing them saves little and costs every plain scrape.
PACK_ABOVE = 4096

_UNSET = float("nan")  # collection time filled in by ``finish``


class GroupBlocks:
    """The data of one (target, collector): one byte block per family holding every
    group in key order, plus where each group's lines end in it.

    Only one copy of the rendered lines is kept, deflated if ``packed`` (large families
    become ``DeflatedBlock``s); a group's own bytes are cut out of the merged blocks when
    they are needed again (a failed instance keeping its previous data, expiry), which is
    rare.
    """

    __slots__ = ("at", "ends", "keys", "merged", "packed")

    def __init__(
        self,
        keys: list[str],
        at: array,
        ends: dict[str, array],
        merged: Blocks,
        packed: bool = False,
    ):
        self.keys = keys
        self.at = at  # collection time per group
        self.ends = ends  # family -> end offset of each group's lines (cumulative)
        self.merged = merged
        self.packed = packed  # large families deflated (what ``plus`` keeps)

    def group(self, index: int) -> tuple[float, dict[str, bytes]]:
        """(collected_at, blocks) of the group at ``index`` (a copy of its lines)."""
        return self._cut(index, self._texts())

    def _texts(self) -> dict[str, bytes]:
        return {
            family: block.inflate() if isinstance(block, DeflatedBlock) else block
            for family, block in self.merged.items()
        }

    def _cut(self, index: int, texts: Mapping[str, bytes]) -> tuple[float, dict[str, bytes]]:
        blocks = {}
        for family, column in self.ends.items():
            start = column[index - 1] if index else 0
            end = column[index]
            if end > start:
                blocks[family] = texts[family][start:end]
        return self.at[index], blocks

    def select(
        self, keep: Callable[[str, float], bool]
    ) -> dict[str, tuple[float, dict[str, bytes]]]:
        """``key -> (collected_at, blocks)`` of the groups for which ``keep(key, at)`` holds
        (copies of their lines, e.g. for ``merge_groups``)."""
        chosen = [i for i, key in enumerate(self.keys) if keep(key, self.at[i])]
        if not chosen:
            return {}
        texts = self._texts()  # each deflated family inflated once, not once per group
        return {self.keys[i]: self._cut(i, texts) for i in chosen}

    def plus(self, extra: Mapping[str, tuple[float, Mapping[str, bytes]]]) -> GroupBlocks:
        """A new GroupBlocks with ``extra`` groups added (or replacing groups of the same key)."""
        groups = self.select(lambda key, _at: key not in extra)
        groups.update(extra)
        return merge_groups(groups, pack=self.packed)


def merge_groups(
    groups: Mapping[str, tuple[float, Mapping[str, bytes]]], *, pack: bool = False
) -> GroupBlocks:
    """GroupBlocks from ``key -> (collected_at, blocks)``."""
    writer = GroupWriter()
    for key, (at, blocks) in groups.items():
        writer.add(key, blocks, at=at)
    return writer.finish(_UNSET, pack=pack)


class GroupWriter:
    """Collects rendered groups from many threads; ``finish`` makes the GroupBlocks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[str] = []
        self._at = array("d")
        self._buffers: dict[str, bytearray] = {}
        # family -> flat (group index, start, end) triples of the groups that have it
        self._spans: dict[str, array] = {}
        self._finished = False

    def add(self, key: str, blocks: Mapping[str, bytes], *, at: float = _UNSET) -> None:
        """Append one group's lines. A key may be added once."""
        with self._lock:
            if self._finished:
                raise RuntimeError("GroupWriter.add after finish")
            index = len(self._keys)
            self._keys.append(key)
            self._at.append(at)
            for family, chunk in blocks.items():
                if not chunk:
                    continue
                buffer = self._buffers.get(family)
                if buffer is None:
                    buffer = self._buffers[family] = bytearray()
                    self._spans[family] = array("Q")
                start = len(buffer)
                buffer += chunk
                self._spans[family].extend((index, start, len(buffer)))

    def finish(self, collected_at: float, *, pack: bool = False) -> GroupBlocks:
        """The GroupBlocks, groups ordered by key; groups added without ``at`` get
        ``collected_at``. With ``pack`` large families are deflated straight from the
        write buffers (the ordered text is never joined). The writer cannot be used
        afterwards."""
        with self._lock:
            self._finished = True
            keys, at, buffers, spans = self._keys, self._at, self._buffers, self._spans
            self._buffers, self._spans = {}, {}
        if len(set(keys)) != len(keys):
            twice = sorted(key for key, n in Counter(keys).items() if n > 1)
            raise ValueError(f"groups added more than once: {twice[:5]}")
        count = len(keys)
        order = sorted(range(count), key=keys.__getitem__)
        ends: dict[str, array] = {}
        merged: Blocks = {}
        for family in sorted(buffers):
            # popped: each family's write buffer is freed before the next one is merged
            merged[family], ends[family] = _reorder(
                buffers.pop(family), spans[family], order, count, pack=pack
            )
        return GroupBlocks(
            [keys[i] for i in order],
            array("d", (collected_at if math.isnan(at[i]) else at[i] for i in order)),
            ends,
            merged,
            packed=pack,
        )


def _reorder(
    buffer: bytearray, spans: array, order: Iterable[int], count: int, *, pack: bool = False
) -> tuple[Block, array]:
    """The family's lines in ``order`` of groups (deflated if ``pack`` and large), and
    each group's cumulative end."""
    starts = array("Q", bytes(8 * count))
    stops = array("Q", bytes(8 * count))
    for i in range(0, len(spans), 3):
        starts[spans[i]] = spans[i + 1]
        stops[spans[i]] = spans[i + 2]
    view = memoryview(buffer)
    pieces = []
    ends = array("Q")
    total = 0
    for index in order:
        start, stop = starts[index], stops[index]
        if stop > start:
            pieces.append(view[start:stop])
            total += stop - start
        ends.append(total)
    merged: Block
    if pack and total >= PACK_ABOVE:
        merged = deflate_pieces(pieces)
    else:
        merged = b"".join(pieces)
    del pieces
    view.release()
    return merged, ends
