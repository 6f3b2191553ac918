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
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
log = logging.getLogger(__name__)


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
class _Piece:
    """Part of a body (its start, its collectors' data, its end): text parts, or deflate
    segments with the CRC-32 and length of their text."""

    parts: tuple[bytes, ...]
    crc: int = 0
    size: int = 0


@dataclass(frozen=True)
class _Prepared:
    """A rendered start or end of the body, and the version of the source it shows."""

    version: object
    piece: _Piece
    at: float  # time.monotonic() when its rendering began
    last_family: int = -1  # FAMILIES index of its last family (a start must precede the rest)


def _last_family(sources: Sequence[Blocks]) -> int:
    return max((_FAMILY_INDEX[f] for blocks in sources for f in blocks), default=-1)


def _peek(
    source: Callable[[], tuple[object, object]] | None,
    version_of: Callable[[], object] | None,
) -> tuple[object, Any]:
    """(version, blocks) of a start or end source; with ``version_of`` the blocks are not
    fetched (None) until they must be rendered: rendering them is what a scrape avoids."""
    if source is None:
        return None, None
    if version_of is not None:
        return version_of(), None
    return source()


# The refresher (``ExpositionCache.start_refresher``) renders a changed start or end of the
# body this often, in its own thread.
REFRESH_SECONDS = 0.1
# While collector runs are in progress a scrape may serve a start (telemetry, health)
# rendered up to this long ago instead of rendering it itself; at rest it never does.
HEAD_LAG_SECONDS = 1.0
# The end (the exporter's own process series, refreshed once a second) may lag this much.
TAIL_LAG_SECONDS = 2.0
# Forms (text/OpenMetrics, gzip or not) nobody asked for in this long are not refreshed.
WANTED_SECONDS = 600.0


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
    health, which change with every API call while a poll runs. A change of it re-renders
    only the start, joined to the cached middle (the collectors' data, by far the largest
    part) with one CRC combination.

    With the refresher running (``start_refresher``), changed starts and ends are rendered
    in its thread, and a scrape only joins prepared pieces: while a poll keeps the polling
    threads busy, any Python work on the scrape path is shared out with them and takes
    many times longer (issue 16). A scrape then may show telemetry and health up to
    ``HEAD_LAG_SECONDS`` old, but only while ``busy()`` (collector runs in progress); at
    rest it renders what it lacks itself. The collectors' data is never served stale.
    """

    def __init__(
        self,
        collect: Callable[[], tuple[object, Sequence[Blocks]]],
        tail: TailSource | None = None,
        head: HeadSource | None = None,
        *,
        busy: Callable[[], bool] | None = None,
        head_version: Callable[[], object] | None = None,
        tail_version: Callable[[], object] | None = None,
    ) -> None:
        self._collect = collect
        self._tail = tail
        self._head = head
        self._busy = busy
        # The sources' versions alone (cheap, no lock, nothing rendered): without them a
        # scrape asks ``head``/``tail``, which render whatever changed.
        self._head_version = head_version
        self._tail_version = tail_version
        self._first: tuple[object, int] = (object(), 0)
        # per (openmetrics, gzipped): the middle (collectors' data) and its version
        self._middles: dict[tuple[bool, bool], tuple[object, _Piece]] = {}
        # per (openmetrics, gzipped): the latest rendered start and end
        self._starts: dict[tuple[bool, bool], _Prepared] = {}
        self._ends: dict[tuple[bool, bool], _Prepared] = {}
        # per (openmetrics, gzipped): the (data, head, tail) versions of the last body served
        self._last: dict[tuple[bool, bool], tuple[tuple[object, object, object], Body]] = {}
        self._wanted: dict[tuple[bool, bool], float] = {}  # form -> when a scrape asked
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        # The family headers never change: their segments are made once.
        self._gzip = SegmentCache(
            fixed=(*_TEXT_HEADERS.values(), *_OPENMETRICS_HEADERS.values(), b"# EOF\n")
        )

    # -- scrapes ---------------------------------------------------------------------------
    def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
        key = (openmetrics, gzipped)
        if self._refresher is not None:
            self._wanted[key] = time.monotonic()
        # The head is read before the collectors' data: a poll swaps a run's data in
        # before it records the run's health, and the alert rules rely on that order (a
        # collector shown successful with its data not yet there would resolve alerts
        # falsely), so a body never shows a newer head than data.
        head = _peek(self._head, self._head_version)
        start = self._start(key, *head)  # a prepared one, or rendered now: before the data
        version, sources = self._collect()
        tail = _peek(self._tail, self._tail_version)
        # The hit of an unchanged exporter: the sources' versions as they came, compared
        # with those of the last body of this form; no lock (the entry is replaced whole).
        versions = (version, head[0], tail[0])
        last = self._last.get(key)
        if last is not None and last[0] == versions:
            return last[1]
        if start.last_family >= self._first_family(version, sources):
            # Not a clean start: build the start with the rest (same output, slower).
            head_version, head_blocks = self._head()  # type: ignore[misc]
            version, sources = self._collect()  # after the head, as above
            version, sources = (version, head_version), [*head_blocks, *sources]
            start = _Prepared(head_version, _Piece(()), 0.0)
        middle = self._middle(key, version, sources)
        end = self._end(key, *tail)
        body = _join(key, start.piece, middle, end.piece)
        # The versions the body shows (a lagging start or end: not the current ones).
        self._last[key] = ((versions[0], start.version, end.version), body)
        return body

    def _middle(self, key: tuple[bool, bool], version: object, sources: Sequence[Blocks]) -> _Piece:
        """The collectors' data of ``version``: never served stale (see ``body``)."""
        cached = self._middles.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        middle = self._build_middle(sources, key)
        if self._collect()[0] == version:
            # Kept only while current: a poll's ``prepare`` that finished late must not
            # put back an older middle over a newer one.
            self._middles[key] = (version, middle)
        return middle

    def _first_family(self, version: object, sources: Sequence[Blocks]) -> int:
        """The FAMILIES index of the first family of ``sources`` (cached per version)."""
        cached = self._first
        if cached[0] != version:
            first = min(
                (_FAMILY_INDEX[family] for blocks in sources for family in blocks),
                default=len(_FAMILY_INDEX),
            )
            cached = self._first = (version, first)
        return cached[1]

    def _start(
        self, key: tuple[bool, bool], version: object, head: Sequence[Blocks] | None
    ) -> _Prepared:
        prepared = self._starts.get(key)
        if prepared is not None and (
            prepared.version == version
            or (self._busy is not None and self._may_lag(prepared, HEAD_LAG_SECONDS)
                and self._busy())
        ):
            return prepared
        return self._new_start(key, version, head)

    def _new_start(
        self, key: tuple[bool, bool], version: object, head: Sequence[Blocks] | None
    ) -> _Prepared:
        """Render the start now (``head`` None: asked from the source) and keep it."""
        if self._head is None:
            prepared = _Prepared(None, _Piece(()), 0.0)
        else:
            began = time.monotonic()
            if head is None:
                version, head = self._head()
            prepared = _Prepared(version, self._render(head, key, end=False), began,
                                 _last_family(head))
        self._starts[key] = prepared
        return prepared

    def _end(self, key: tuple[bool, bool], version: object, tail: Blocks | None) -> _Prepared:
        prepared = self._ends.get(key)
        if prepared is not None and (
            prepared.version == version or self._may_lag(prepared, TAIL_LAG_SECONDS)
        ):
            return prepared
        return self._new_end(key, version, tail)

    def _new_end(self, key: tuple[bool, bool], version: object, tail: Blocks | None) -> _Prepared:
        """Render the end now (``tail`` None: asked from the source) and keep it."""
        began = time.monotonic()
        if tail is None and self._tail is not None:
            version, tail = self._tail()
        prepared = self._ends[key] = _Prepared(
            version, self._render([tail] if tail else [], key, end=True), began
        )
        return prepared

    def _may_lag(self, prepared: _Prepared, seconds: float) -> bool:
        return self._refresher is not None and time.monotonic() - prepared.at <= seconds

    # -- the refresher and the poll's thread ---------------------------------------------
    def start_refresher(self, interval: float = REFRESH_SECONDS) -> None:
        if self._refresher is not None:
            return
        self._stop.clear()
        self._refresher = threading.Thread(
            target=self._refresh_loop, args=(interval,), name="exposition-refresh", daemon=True
        )
        self._refresher.start()

    def stop_refresher(self) -> None:
        thread, self._refresher = self._refresher, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=2)

    def _refresh_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # scrapes render what they need themselves meanwhile
                log.exception("rendering the start or end of /metrics failed")

    def refresh(self) -> None:
        """Render the start and end of every form scraped lately if their sources moved."""
        now = time.monotonic()
        forms = [key for key, at in list(self._wanted.items()) if now - at <= WANTED_SECONDS]
        if not forms:
            return
        head = _peek(self._head, self._head_version)
        tail = _peek(self._tail, self._tail_version)
        for key in forms:
            prepared = self._starts.get(key)
            if self._head is not None and (prepared is None or prepared.version != head[0]):
                self._new_start(key, *head)
            prepared = self._ends.get(key)
            if prepared is None or prepared.version != tail[0]:
                self._new_end(key, *tail)

    def prepare(self) -> None:
        """Compress the blocks that are new since the last call and forget vanished ones;
        then build the middle of the forms scraped lately.

        Called after a snapshot swap (in the poller's thread), so that no scrape pays for
        compressing a large block, nor for stitching the collectors' data.
        """
        version, sources = self._collect()
        # Only the collectors' blocks: the start and end are rendered (and their small
        # parts compressed together) by the refresher or the scrape that needs them.
        self._gzip.prepare(block for blocks in sources for block in blocks.values())
        now = time.monotonic()
        for key, at in list(self._wanted.items()):
            if now - at <= WANTED_SECONDS:
                self._middle(key, version, sources)

    # -- rendering -------------------------------------------------------------------------
    def _build_middle(self, sources: Sequence[Blocks], key: tuple[bool, bool]) -> _Piece:
        openmetrics, gzipped = key
        # Large blocks keep their own (cached) segments; small ones were compressed by
        # ``prepare``, so nothing is joined before compression here.
        return self._piece(_family_parts(sources, openmetrics=openmetrics), gzipped)

    def _render(self, sources: Sequence[Blocks], key: tuple[bool, bool], *, end: bool) -> _Piece:
        openmetrics, gzipped = key
        parts = _family_parts(sources, openmetrics=openmetrics)
        if end and openmetrics:
            parts.append(b"# EOF\n")
        # Runs of small parts are joined before they are compressed: every call into
        # zlib gives the interpreter lock away, and while a poll keeps the polling
        # threads busy, taking it back costs a thread switch each time (issue 16).
        piece = self._piece(_coalesce(parts), gzipped)
        if end and gzipped:
            # caches the CRC shift of this length for the join
            crc32_combine(0, piece.crc, piece.size)
        return piece

    def _piece(self, parts: Sequence[Block], gzipped: bool) -> _Piece:
        """``parts`` as text, or as deflate segments with their CRC-32 and length."""
        if not gzipped:
            return _Piece(tuple(_coalesce([text_of(part) for part in parts])))
        segments, crc, size = self._gzip.deflate(parts)
        return _Piece(tuple(_coalesce(segments)), crc, size)


def _join(key: tuple[bool, bool], start: _Piece, middle: _Piece, end: _Piece) -> Body:
    openmetrics, gzipped = key
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
    if gzipped:
        crc = crc32_combine(start.crc, middle.crc, middle.size)
        crc = crc32_combine(crc, end.crc, end.size)
        size = start.size + middle.size + end.size
        parts = (GZIP_HEADER, *start.parts, *middle.parts, *end.parts, gzip_end(crc, size))
    else:
        parts = (*start.parts, *middle.parts, *end.parts)
    return Body(parts, content_type, gzipped, sum(map(len, parts)))


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
