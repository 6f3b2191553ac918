"""Render samples into the Prometheus text format (0.0.4) and OpenMetrics 1.0.

Rendering happens when data changes, not when Prometheus scrapes: every source (a
collector snapshot, the exporter's own telemetry, the collector health table) keeps its
samples pre-rendered as one byte block per metric family, and a scrape only joins those
blocks in family order. The joined body, and its gzip form, are cached until any source
changes, so a scrape of an unchanged exporter costs a dictionary lookup whatever the
number of series.

Only the family headers differ between the two formats: OpenMetrics names a counter
family without ``_total`` and ends with ``# EOF``; sample lines are identical.

Bounded memory and cheap scrapes at thousands of instances (tens of MB of text):

* a body is never joined into one byte string: it is the list of the blocks (shared by
  both formats, owned by their sources) and the family headers, written one after the
  other, so the only copy of the series is the one the sources keep;
* the gzip form is stitched from one deflate segment per block (``exporter.gzipstitch``).
  A block is compressed once, when it first appears (``ExpositionCache.prepare``, called
  by the poller after a snapshot swap), so a change of the small, busy sources
  (telemetry during a poll) costs a scrape only the compression of those small blocks.

Also here: content negotiation (``wants_openmetrics``, ``wants_gzip``).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.gzipstitch import (
    GZIP_HEADER,
    Block,
    SegmentCache,
    crc32_combine,
    gzip_end,
    text_of,
)
from exporter.metricdefs import FAMILIES, family_of
from exporter.samples import Sample

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Family name -> the rendered sample lines of one source: text, or for the collectors'
# large blocks a DeflatedBlock (kept compressed, inflated for an uncompressed scrape).
Blocks = dict[str, Block]
# A source rendered after all others, with its own version: (version, blocks). Its families
# must come last in FAMILIES. A change of it re-renders only the end of a cached body.
TailSource = Callable[[], tuple[object, Blocks]]
# Sources rendered before all others, with their own version: (version, [blocks, ...]).
# Their families must come before every family of the other sources in FAMILIES (checked:
# otherwise the body is built as one). A change of them re-renders only the body's start.
HeadSource = Callable[[], tuple[object, Sequence[Blocks]]]
_FAMILY_INDEX = {name: i for i, name in enumerate(FAMILIES)}


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        # Integral values are common (counts, bytes, timestamps): "12" not "12.0".
        return str(int(value))
    return repr(float(value))


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render_sample(sample: Sample) -> str:
    if sample.labels:
        labels = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sample.labels)
        return f"{sample.name}{{{labels}}} {format_value(sample.value)}\n"
    return f"{sample.name} {format_value(sample.value)}\n"


def render_blocks(samples: Iterable[Sample]) -> Blocks:
    """Group samples by family and render each group once.

    Same lines as ``render_sample``; the pairs of one batch repeat (target, instance,
    store...), so each distinct pair is escaped and formatted only once.
    """
    lines: dict[str, list[str]] = {}
    pair_text: dict[tuple[str, str], str] = {}
    for sample in samples:
        family = family_of(sample.name).name
        if sample.labels:
            texts = []
            for pair in sample.labels:
                text = pair_text.get(pair)
                if text is None:
                    text = pair_text[pair] = f'{pair[0]}="{_escape_label_value(pair[1])}"'
                texts.append(text)
            line = f"{sample.name}{{{','.join(texts)}}} {format_value(sample.value)}\n"
        else:
            line = f"{sample.name} {format_value(sample.value)}\n"
        group = lines.get(family)
        if group is None:
            lines[family] = [line]
        else:
            group.append(line)
    return {family: "".join(group).encode() for family, group in lines.items()}


def _headers(openmetrics: bool) -> dict[str, bytes]:
    headers = {}
    for name, fam in FAMILIES.items():
        if openmetrics:
            shown = name
        else:
            # The 0.0.4 text format names a counter family after its sample (`x_total`),
            # which is also what promtool's lint expects.
            shown = f"{name}_total" if fam.type == "counter" else name
        headers[name] = (
            f"# HELP {shown} {_escape_help(fam.help)}\n# TYPE {shown} {fam.type}\n"
        ).encode()
    return headers


_TEXT_HEADERS = _headers(openmetrics=False)
_OPENMETRICS_HEADERS = _headers(openmetrics=True)


def assemble(sources: Sequence[Blocks], *, openmetrics: bool) -> bytes:
    """Join pre-rendered blocks of all sources in the stable family order."""
    headers = _OPENMETRICS_HEADERS if openmetrics else _TEXT_HEADERS
    parts: list[bytes] = []
    for family in FAMILIES:
        chunks = [text_of(blocks[family]) for blocks in sources if family in blocks]
        if chunks:
            parts.append(headers[family])
            parts.extend(chunks)
    if openmetrics:
        parts.append(b"# EOF\n")
    return b"".join(parts)


def body_parts(sources: Sequence[Blocks], *, openmetrics: bool) -> list[bytes]:
    """The body as a list of byte strings in order (headers and the sources' own blocks,
    nothing copied); ``b"".join`` of it equals ``assemble``."""
    parts = [text_of(part) for part in _family_parts(sources, openmetrics=openmetrics)]
    if openmetrics:
        parts.append(b"# EOF\n")
    return parts


def _family_parts(sources: Sequence[Blocks], *, openmetrics: bool) -> list[Block]:
    """Headers and blocks in family order; deflated blocks stay deflated (``text_of``
    turns them into text for an uncompressed body)."""
    headers = _OPENMETRICS_HEADERS if openmetrics else _TEXT_HEADERS
    parts: list[Block] = []
    for family in FAMILIES:
        chunks = [blocks[family] for blocks in sources if blocks.get(family)]
        if chunks:
            parts.append(headers[family])
            parts.extend(chunks)
    return parts


@dataclass(frozen=True)
class Body:
    parts: tuple[bytes, ...]  # written in order; never joined on the scrape path
    content_type: str
    gzipped: bool
    length: int

    @property
    def content(self) -> bytes:
        """The whole body as one byte string (a copy: for tests and small bodies)."""
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)


@dataclass(frozen=True)
class _Prefix:
    """A body without its tail: text parts, or a gzip header and segments with the CRC-32
    and length of the data so far (an open member)."""

    parts: tuple[bytes, ...]
    crc: int = 0
    size: int = 0


class ExpositionCache:
    """Caches the bodies until the version of the sources changes.

    ``collect`` returns ``(version, blocks)``; the version is any hashable value that
    changes whenever any block changes. Building a body lists the blocks (no copy) and,
    for gzip, stitches cached deflate segments; it happens outside the lock, so a scrape
    never waits for another one, nor for a poll.

    ``tail`` (optional) is a source that changes often but is small (the exporter's own
    process series): its blocks end the body, and a change of it only re-renders that end
    on top of the cached rest, so a scrape stays cheap when nothing else changed.

    ``head`` (optional) likewise begins the body: the exporter's telemetry and collector
    health, which change with every API call while a poll runs. A scrape then re-renders
    only the start and joins it to the cached middle (the collectors' data, by far the
    largest part) with one CRC combination, instead of rebuilding the whole body while
    competing with the polling threads for the interpreter (issue 16).
    """

    def __init__(
        self,
        collect: Callable[[], tuple[object, Sequence[Blocks]]],
        tail: TailSource | None = None,
        head: HeadSource | None = None,
    ) -> None:
        self._collect = collect
        self._tail = tail
        self._head = head
        self._lock = threading.Lock()
        self._version: object = object()
        # per (openmetrics, gzipped): (tail version, body), and the body without its tail
        self._bodies: dict[tuple[bool, bool], tuple[object, Body]] = {}
        self._prefixes: dict[tuple[bool, bool], _Prefix] = {}
        # per (openmetrics, gzipped): the (data, head, tail) versions of the last body served
        self._last: dict[tuple[bool, bool], tuple[tuple[object, object, object], Body]] = {}
        # The family headers never change: their segments are made once.
        self._gzip = SegmentCache(
            fixed=(*_TEXT_HEADERS.values(), *_OPENMETRICS_HEADERS.values(), b"# EOF\n")
        )

    def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
        key = (openmetrics, gzipped)
        version, sources = self._collect()
        head_version, head = self._head() if self._head else (None, [])
        tail_version, tail_blocks = self._tail() if self._tail else (None, {})
        # The hit of an unchanged exporter: the sources' versions as they came, compared
        # with those of the last body of this form; no lock (the entry is replaced whole).
        versions = (version, head_version, tail_version)
        last = self._last.get(key)
        if last is not None and last[0] == versions:
            return last[1]
        body = self._body(key, version, sources, head_version, head, tail_version, tail_blocks)
        self._last[key] = (versions, body)
        return body

    def _body(
        self,
        key: tuple[bool, bool],
        version: object,
        sources: Sequence[Blocks],
        head_version: object,
        head: Sequence[Blocks],
        tail_version: object,
        tail_blocks: Blocks,
    ) -> Body:
        openmetrics, gzipped = key
        if head and not _precedes(head, sources):
            # Not a clean start: build the start with the rest (same output, slower).
            version, sources = (version, head_version), [*head, *sources]
            head_version, head = None, []
        ends = (head_version, tail_version)
        prefix = None
        with self._lock:
            if version == self._version:
                cached = self._bodies.get(key)
                if cached is not None and cached[0] == ends:
                    return cached[1]
                prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._build_prefix(sources, openmetrics=openmetrics, gzipped=gzipped)
        body = self._finish(head, prefix, tail_blocks, openmetrics=openmetrics, gzipped=gzipped)
        with self._lock:
            if version != self._version:
                self._version = version
                self._bodies = {}
                self._prefixes = {}
            self._prefixes[key] = prefix
            self._bodies[key] = (ends, body)
        return body

    def prepare(self) -> None:
        """Compress the blocks that are new since the last call and forget vanished ones.

        Called after a snapshot swap (in the poller's thread), so that no scrape pays for
        compressing a large block.
        """
        _, sources = self._collect()
        _, head = self._head() if self._head else (None, [])
        self._gzip.prepare(block for blocks in [*head, *sources] for block in blocks.values())

    def _build_prefix(
        self, sources: Sequence[Blocks], *, openmetrics: bool, gzipped: bool
    ) -> _Prefix:
        parts = _family_parts(sources, openmetrics=openmetrics)
        if not gzipped:
            return _Prefix(tuple(_coalesce([text_of(part) for part in parts])))
        segments, crc, size = self._gzip.deflate(parts)  # the CRC of the middle alone
        return _Prefix(tuple(_coalesce(segments)), crc, size)

    def _finish(
        self,
        head: Sequence[Blocks],
        middle: _Prefix,
        tail: Blocks,
        *,
        openmetrics: bool,
        gzipped: bool,
    ) -> Body:
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        start = _family_parts(head, openmetrics=openmetrics) if head else []
        end = _family_parts([tail], openmetrics=openmetrics) if tail else []
        if openmetrics:
            end.append(b"# EOF\n")
        if gzipped:
            # Runs of small parts are joined before they are compressed: every call into
            # zlib gives the interpreter lock away, and while a poll keeps the polling
            # threads busy, taking it back costs a thread switch each time (issue 16).
            segments, crc, size = self._gzip.deflate(_coalesce(start))
            start = [GZIP_HEADER, *segments]
            crc = crc32_combine(crc, middle.crc, middle.size)
            segments, crc, size = self._gzip.deflate(_coalesce(end), crc, size + middle.size)
            end = [*segments, gzip_end(crc, size)]
        else:
            start, end = [text_of(p) for p in start], [text_of(p) for p in end]
        parts = (*_coalesce(start), *middle.parts, *_coalesce(end))
        return Body(parts, content_type, gzipped, sum(map(len, parts)))


def _precedes(head: Sequence[Blocks], rest: Sequence[Blocks]) -> bool:
    """True if every family of ``head`` comes before every family of ``rest`` (FAMILIES
    order), i.e. rendering head then rest gives the body rendering all at once gives."""
    last = max((_FAMILY_INDEX[f] for blocks in head for f in blocks), default=-1)
    for blocks in rest:
        for family in blocks:
            if _FAMILY_INDEX[family] <= last:
                return False
    return True


def _coalesce(parts: Sequence[Block], small: int = 65536) -> list[Block]:
    """Join runs of small parts (headers, small blocks): fewer writes per scrape, and the
    copies are bounded by ``small`` per part. Deflated blocks are never joined."""
    out: list[Block] = []
    run: list[bytes] = []
    for part in parts:
        if isinstance(part, bytes) and len(part) < small:
            run.append(part)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(part)
    if run:
        out.append(b"".join(run))
    return out


# Both are asked on every scrape with the same few header values (one per Prometheus
# version): the answers are cached, a few entries (a header is at most the head budget).
@functools.lru_cache(maxsize=16)
def wants_openmetrics(accept: str | None) -> bool:
    """Content negotiation: OpenMetrics only when the client asks for it."""
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "application/openmetrics-text":
            params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
            q = params.get("q", "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


@functools.lru_cache(maxsize=16)
def wants_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for part in accept_encoding.split(","):
        pieces = part.strip().split(";")
        if pieces[0].strip().lower() == "gzip":
            for param in pieces[1:]:
                name, _, value = param.strip().partition("=")
                if name == "q" and value.strip() in ("0", "0.0", "0.00", "0.000"):
                    return False
            return True
    return False
