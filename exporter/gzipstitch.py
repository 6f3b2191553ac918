"""A gzip body stitched from cached deflate segments, so a scrape never compresses much.

Each block of a body (a source's rendered family lines, a family header) is compressed
once, when it first appears, into raw deflate blocks ending on a byte boundary (RFC 1951);
segments of independent compressors concatenate into one valid deflate stream. A gzip
body is then a header, the segments of its parts in order and a trailer whose CRC-32 is
combined arithmetically from the parts' CRCs (``crc32_combine``, zlib's algorithm), so a
change of a small, busy source (telemetry during a poll) costs a scrape only the
compression of that small block, never of the whole body. ``exporter.exposition`` decides
what the body is; this module only makes its gzip form.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterable, Sequence

GZIP_LEVEL = 6  # the usual balance; each block is compressed once anyway
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, mtime 0, OS unknown
_DEFLATE_END = b"\x03\x00"  # an empty final block (fixed Huffman)
_CRC_POLY = 0xEDB88320  # reflected CRC-32 polynomial
# Parts at least this long are folded into the body's CRC by ``crc32_combine`` (about
# 0.1 ms in Python whatever the length); shorter ones are simply run through zlib.crc32.
_COMBINE_ABOVE = 256 * 1024


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (zlib's multmodp, reflected bit order)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return tuple(table)


_X2N = _x2n_table()  # x^(2^n) modulo the polynomial


@functools.lru_cache(maxsize=4096)
def _x8nmodp(length: int) -> int:
    """x^(8 * length) modulo the polynomial: the shift of a CRC past ``length`` bytes.

    Cached: the large blocks a body is stitched from keep their lengths from one scrape to
    the next, so a rebuild pays one multiplication per block instead of O(log length).
    """
    p = 1 << 31  # x^0
    k = 3  # 2^3 bits per byte
    while length:
        if length & 1:
            p = _multmodp(_X2N[k & 31], p)
        length >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc32(A), crc32(B) and len(B) (zlib's algorithm)."""
    if len2 == 0:
        return crc1
    return _multmodp(_x8nmodp(len2), crc1) ^ crc2


class DeflatedBlock:
    """A large block of rendered lines kept only as its deflate segment (issue 16).

    Prometheus asks for gzip, so the collectors' data (tens of MB of text at thousands of
    instances) is kept compressed, about 25 times smaller, and a gzip body uses the
    segment as it is. An uncompressed scrape inflates the block once (``text``); the text
    is then kept with the block, which lives until its collector's next run, so repeated
    uncompressed scrapes cost no more than before and a gzip-only set-up never holds it.
    """

    __slots__ = ("_text", "crc", "segment", "size")

    def __init__(self, segment: bytes, crc: int, size: int) -> None:
        self.segment = segment  # raw deflate, ends on a byte boundary (Z_SYNC_FLUSH)
        self.crc = crc  # CRC-32 of the text
        self.size = size  # length of the text
        self._text: bytes | None = None

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"DeflatedBlock(size={self.size}, deflated={len(self.segment)})"

    def inflate(self) -> bytes:
        """The text, inflated now and not kept (kept-instance merges, expiry)."""
        if self._text is not None:
            return self._text
        return inflate_segment(self.segment)

    def text(self) -> bytes:
        """The text, kept with the block from now on (uncompressed scrapes)."""
        if self._text is None:
            # Two scrapes may inflate at once: same bytes, the last one is kept.
            self._text = self.inflate()
        return self._text


# A block, as sources hand it to the exposition: its text, or its deflate segment.
Block = bytes | DeflatedBlock


def inflate_segment(segment: bytes) -> bytes:
    """The data of a raw deflate segment (whether or not it ends with a final block)."""
    return zlib.decompressobj(-15).decompress(segment)


def text_of(block: Block) -> bytes:
    return block.text() if isinstance(block, DeflatedBlock) else block


# Pieces are joined into chunks of about this size before compression: each call into
# zlib gives the interpreter lock away, and under a busy poll taking it back costs a
# thread switch, so thousands of small calls would stall the polling thread.
_DEFLATE_CHUNK = 256 * 1024


def deflate_pieces(pieces: Iterable[bytes | memoryview]) -> DeflatedBlock:
    """A ``DeflatedBlock`` of the concatenation of ``pieces``, never joined in full."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
    out: list[bytes] = []
    crc = size = 0
    chunk = bytearray()
    for piece in pieces:
        chunk += piece
        if len(chunk) >= _DEFLATE_CHUNK:
            out.append(compressor.compress(chunk))
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            chunk.clear()
    if chunk:
        out.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return DeflatedBlock(b"".join(out), crc, size)


def pack_pieces(pieces: Sequence[bytes | memoryview], size: int, above: int | None) -> Block:
    """The concatenation of ``pieces`` (``size`` bytes in all): a ``DeflatedBlock`` if
    ``above`` is given and ``size`` reaches it, else the joined text."""
    if above is not None and size >= above:
        return deflate_pieces(pieces)
    return b"".join(pieces)


def concat_blocks(blocks: Sequence[Block]) -> Block:
    """The concatenation of ``blocks``, without inflating any: deflate segments that end
    on a byte boundary concatenate into one valid segment, and the CRCs combine."""
    if all(isinstance(block, bytes) for block in blocks):
        return b"".join(blocks)  # type: ignore[arg-type]
    segments: list[bytes] = []
    crc = size = 0
    for block in blocks:
        if isinstance(block, DeflatedBlock):
            segment, part_crc = block.segment, block.crc
        else:
            segment, part_crc = deflate_segment(block)
        segments.append(segment)
        crc = crc32_combine(crc, part_crc, len(block))
        size += len(block)
    return DeflatedBlock(b"".join(segments), crc, size)


def deflate_segment(data: bytes) -> tuple[bytes, int]:
    """``data`` as raw deflate blocks ending on a byte boundary, and its CRC-32.

    Segments of independent compressors concatenate into one valid deflate stream (none
    refers back into another), which is how a gzip body is stitched from cached pieces.
    """
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data)


class SegmentCache:
    """The deflate segments of the blocks bodies are made of, each compressed once.

    ``fixed`` parts (family headers) are compressed here once for the cache's life;
    ``prepare`` compresses a set of blocks ahead of the scrapes and forgets the segments
    of blocks no longer in it.
    """

    def __init__(self, fixed: Iterable[bytes] = ()) -> None:
        self._fixed: dict[bytes, tuple[bytes, int]] = {
            part: deflate_segment(part) for part in fixed
        }
        # id(block) -> (block, segment, crc). The block itself is kept so that its id
        # cannot be reused while the entry lives; entries of vanished blocks are dropped
        # by ``prepare``.
        self._segments: dict[int, tuple[bytes, bytes, int]] = {}

    def prepare(self, blocks: Iterable[Block]) -> None:
        """Compress the blocks that are new since the last call and forget vanished ones."""
        segments = self._segments
        fresh = {}
        for block in blocks:
            if isinstance(block, DeflatedBlock):
                continue  # compressed already
            entry = segments.get(id(block))
            if entry is None or entry[0] is not block:
                entry = (block, *deflate_segment(block))
            fresh[id(block)] = entry
        self._segments = fresh

    def segment(self, block: Block) -> tuple[bytes, int]:
        """``block``'s deflate segment and CRC-32, compressed now if not known."""
        if isinstance(block, DeflatedBlock):
            return block.segment, block.crc
        if len(block) < 4096:
            fixed = self._fixed.get(block)
            if fixed is not None:
                return fixed
        entry = self._segments.get(id(block))
        if entry is not None and entry[0] is block:
            return entry[1], entry[2]
        segment, crc = deflate_segment(block)
        if len(block) >= 65536:
            # Large and not prepared: remember it (``prepare`` prunes the cache later).
            self._segments[id(block)] = (block, segment, crc)
        return segment, crc

    def deflate(
        self, parts: Iterable[Block], crc: int = 0, size: int = 0
    ) -> tuple[list[bytes], int, int]:
        """The deflate segments of ``parts`` and the CRC-32 and length of their data,
        continuing from ``crc``/``size`` (the data before them): an open gzip member that
        more parts can extend before ``gzip_end``."""
        out = []
        for part in parts:
            segment, part_crc = self.segment(part)
            out.append(segment)
            if len(part) < _COMBINE_ABOVE and isinstance(part, bytes):
                crc = zlib.crc32(part, crc)  # C speed: cheaper than combining a small part
            else:
                crc = crc32_combine(crc, part_crc, len(part))
            size += len(part)
        return out, crc, size


GZIP_HEADER = _GZIP_HEADER


def gzip_end(crc: int, size: int) -> bytes:
    """The end of a stitched member: an empty final deflate block and the trailer."""
    return _DEFLATE_END + struct.pack("<II", crc, size & 0xFFFFFFFF)
