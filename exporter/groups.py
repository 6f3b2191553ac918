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
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

from exporter.gzipstitch import Block, DeflatedBlock, inflate_segment, pack_pieces

Blocks = dict[str, Block]  # family -> rendered lines (same as exposition.Blocks)

# With ``pack``, families with at least this much text are kept deflated (DeflatedBlock);
# smaller ones stay text: compressing them saves little and costs every plain scrape.
PACK_ABOVE = 4096


def _pack_above(pack: bool) -> int | None:
    return PACK_ABOVE if pack else None

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
        return self.select(lambda key, _at: key == self.keys[index])[self.keys[index]]

    def _text(self, family: str) -> bytes:
        block = self.merged.get(family, b"")
        return block.inflate() if isinstance(block, DeflatedBlock) else block

    def _span(self, family: str, index: int) -> tuple[int, int]:
        column = self.ends[family]
        return (column[index - 1] if index else 0), column[index]

    def select(
        self, keep: Callable[[str, float], bool]
    ) -> dict[str, tuple[float, dict[str, bytes]]]:
        """``key -> (collected_at, blocks)`` of the groups for which ``keep(key, at)`` holds
        (copies of their lines, e.g. for ``merge_groups``)."""
        chosen = [i for i, key in enumerate(self.keys) if keep(key, self.at[i])]
        out: dict[str, tuple[float, dict[str, bytes]]] = {
            self.keys[i]: (self.at[i], {}) for i in chosen
        }
        if not chosen:
            return out
        # Family by family: a deflated family is inflated once, and only one at a time.
        for family in self.ends:
            text = self._text(family)
            for i in chosen:
                start, end = self._span(family, i)
                if end > start:
                    out[self.keys[i]][1][family] = text[start:end]
        return out

    def plus(self, extra: Mapping[str, tuple[float, Mapping[str, bytes]]]) -> GroupBlocks:
        """A new GroupBlocks with ``extra`` groups added (or replacing groups of the same
        key). Built family by family (one family inflated at a time), packed as this one."""
        own = {key: i for i, key in enumerate(self.keys) if key not in extra}
        keys = sorted([*own, *extra])
        at = array("d", (extra[key][0] if key in extra else self.at[own[key]] for key in keys))
        families = set(self.ends)
        for _, blocks in extra.values():
            families.update(family for family, chunk in blocks.items() if chunk)
        ends: dict[str, array] = {}
        merged: Blocks = {}
        for family in sorted(families):
            text = memoryview(self._text(family))
            pieces: list[bytes | memoryview] = []
            column = array("Q")
            total = 0
            for key in keys:
                if key in extra:
                    piece: bytes | memoryview = extra[key][1].get(family, b"")
                elif family in self.ends:
                    start, end = self._span(family, own[key])
                    piece = text[start:end]
                else:
                    piece = b""
                if piece:
                    pieces.append(piece)
                    total += len(piece)
                column.append(total)
            if total:
                ends[family] = column
                merged[family] = pack_pieces(pieces, total, _pack_above(self.packed))
        return GroupBlocks(keys, at, ends, merged, packed=self.packed)


def merge_groups(
    groups: Mapping[str, tuple[float, Mapping[str, bytes]]], *, pack: bool = False
) -> GroupBlocks:
    """GroupBlocks from ``key -> (collected_at, blocks)``."""
    writer = GroupWriter()
    for key, (at, blocks) in groups.items():
        writer.add(key, blocks, at=at)
    return writer.finish(_UNSET, pack=pack)


class _FamilyBuffer:
    """One family's lines of a run, in the order they arrived: earlier parts spooled
    (deflated, level 1) and the current part as text, plus where each group's lines are.

    Spooling bounds the text a run holds to about ``SPOOL_BYTES`` per family: at thousands
    of instances a collector's text is tens of MB, and holding it all until the run ends
    was most of the exporter's memory peak (issue 16). ``finish`` reads the parts back in
    key order; workers take instances in that order (``map_instances``), so only a part or
    two are inflated at a time.
    """

    __slots__ = ("current", "spans", "spools")

    def __init__(self) -> None:
        self.spools: list[bytes] = []
        self.current = bytearray()
        self.spans = array("Q")  # (group index, part, start, end) per group that has lines


# A family's text is spooled in parts of about this size while a run is written.
SPOOL_BYTES = 256 * 1024
_SPOOL_LEVEL = 1  # read back once by the same run: speed over size


class GroupWriter:
    """Collects rendered groups from many threads; ``finish`` makes the GroupBlocks.

    ``spool``: deflate each family's text in parts while the run is written (the
    snapshot store's runs; see ``_FamilyBuffer``)."""

    def __init__(self, *, spool: bool = False) -> None:
        self._lock = threading.Lock()
        self._spool = spool
        self._keys: list[str] = []
        self._at = array("d")
        self._families: dict[str, _FamilyBuffer] = {}
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
                lines = self._families.get(family)
                if lines is None:
                    lines = self._families[family] = _FamilyBuffer()
                start = len(lines.current)
                lines.current += chunk
                lines.spans.extend((index, len(lines.spools), start, len(lines.current)))
                if self._spool and len(lines.current) >= SPOOL_BYTES:
                    compressor = zlib.compressobj(_SPOOL_LEVEL, zlib.DEFLATED, -15)
                    lines.spools.append(compressor.compress(lines.current) + compressor.flush())
                    lines.current = bytearray()

    def finish(self, collected_at: float, *, pack: bool = False) -> GroupBlocks:
        """The GroupBlocks, groups ordered by key; groups added without ``at`` get
        ``collected_at``. With ``pack`` large families are deflated straight from the
        write buffers (the ordered text is never joined). The writer cannot be used
        afterwards."""
        with self._lock:
            self._finished = True
            keys, at, families = self._keys, self._at, self._families
            self._families = {}
        if len(set(keys)) != len(keys):
            twice = sorted(key for key, n in Counter(keys).items() if n > 1)
            raise ValueError(f"groups added more than once: {twice[:5]}")
        count = len(keys)
        order = sorted(range(count), key=keys.__getitem__)
        ends: dict[str, array] = {}
        merged: Blocks = {}
        for family in sorted(families):
            # popped: each family's buffers are freed before the next one is merged
            merged[family], ends[family] = _reorder(families.pop(family), order, count, pack)
        return GroupBlocks(
            [keys[i] for i in order],
            array("d", (collected_at if math.isnan(at[i]) else at[i] for i in order)),
            ends,
            merged,
            packed=pack,
        )


def _reorder(
    lines: _FamilyBuffer, order: Iterable[int], count: int, pack: bool
) -> tuple[Block, array]:
    """The family's lines in ``order`` of groups (deflated if ``pack`` and large), and
    each group's cumulative end."""
    spans = lines.spans
    where = [(0, 0, 0)] * count  # group index -> (part, start, end); end 0: no lines
    left = [0] * (len(lines.spools) + 1)  # groups still to read per part
    size = 0
    for i in range(0, len(spans), 4):
        where[spans[i]] = (spans[i + 1], spans[i + 2], spans[i + 3])
        left[spans[i + 1]] += 1
        size += spans[i + 3] - spans[i + 2]
    inflated: dict[int, bytes] = {}
    ends = array("Q")
    total = 0

    def pieces() -> Iterator[bytes | memoryview]:
        nonlocal total
        for index in order:
            part, start, stop = where[index]
            if stop > start:
                if part == len(lines.spools):
                    text: bytes | bytearray = lines.current
                elif part in inflated:
                    text = inflated[part]
                else:
                    text = inflated[part] = inflate_segment(lines.spools[part])
                yield memoryview(text)[start:stop]
                total += stop - start
                left[part] -= 1
                if not left[part] and part < len(lines.spools):
                    inflated.pop(part, None)  # every group of that part is read
                    lines.spools[part] = b""
            ends.append(total)

    merged = pack_pieces(pieces(), size, _pack_above(pack))
    lines.current = bytearray()
    return merged, ends
