"""Render samples into the Prometheus text format (0.0.4) and OpenMetrics 1.0.

Rendering happens when data changes, not when Prometheus scrapes: every source (a
collector snapshot, the exporter's own telemetry, the collector health table) keeps its
samples pre-rendered as one byte block per metric family, and a scrape only joins those
blocks in family order. The joined body, and its gzip form, are cached until any source
changes, so a scrape of an unchanged exporter costs a dictionary lookup whatever the
number of series.

Only the family headers differ between the two formats: OpenMetrics names a counter
family without ``_total`` and ends with ``# EOF``; sample lines are identical.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.collectors.base import Sample
from exporter.metricdefs import FAMILIES, family_of

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Family name -> the rendered sample lines of one source.
Blocks = dict[str, bytes]


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
    """Group samples by family and render each group once."""
    lines: dict[str, list[str]] = {}
    for sample in samples:
        family = family_of(sample.name).name
        lines.setdefault(family, []).append(render_sample(sample))
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
        chunks = [blocks[family] for blocks in sources if family in blocks]
        if chunks:
            parts.append(headers[family])
            parts.extend(chunks)
    if openmetrics:
        parts.append(b"# EOF\n")
    return b"".join(parts)


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str
    gzipped: bool


class ExpositionCache:
    """Caches the assembled bodies until the version of the sources changes.

    ``collect`` returns ``(version, blocks)``; the version is any hashable value that
    changes whenever any block changes. Assembly happens outside the scrape path's lock
    contention only once per version and format.
    """

    def __init__(self, collect: Callable[[], tuple[object, Sequence[Blocks]]]) -> None:
        self._collect = collect
        self._lock = threading.Lock()
        self._version: object = object()
        self._bodies: dict[tuple[bool, bool], bytes] = {}

    def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        key = (openmetrics, gzipped)
        with self._lock:
            version, sources = self._collect()
            if version != self._version:
                self._version = version
                self._bodies = {}
            content = self._bodies.get(key)
            if content is None:
                plain = self._bodies.get((openmetrics, False))
                if plain is None:
                    plain = assemble(sources, openmetrics=openmetrics)
                    self._bodies[(openmetrics, False)] = plain
                # compresslevel 6 is the usual balance; the result is cached anyway.
                content = gzip.compress(plain, compresslevel=6, mtime=0) if gzipped else plain
                self._bodies[key] = content
        return Body(content, content_type, gzipped)


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
