"""Connection classes of the SPE client's pools: a request goes out in one write.

urllib3 writes the request head and the body separately: two TLS records and two
``send`` calls per API call. Each call is a point where the thread gives up the GIL; with
dozens of polling threads and a few milliseconds of CPU per call, every give-up can cost
the thread a wait behind the others, so halving them measurably shortens poll cycles
(benchmarks/RESULTS.md). SPE request bodies are small form posts, so joining head and
body costs nothing worth mentioning.
"""

from __future__ import annotations

from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Bodies up to this size are joined with the head; larger ones are streamed as urllib3 does.
MAX_JOINED_BODY = 64 * 1024


class _OneWrite:
    """Mixin for urllib3 connections: buffer everything ``request`` sends, write it once."""

    _pending: list[bytes] | None = None

    def request(
        self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> None:
        if not (isinstance(body, bytes) and len(body) <= MAX_JOINED_BODY):
            super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]
            return
        self._pending = []
        try:
            super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]
        except BaseException:
            self._pending = None  # nothing half-sent: the connection is discarded anyway
            raise
        data, self._pending = b"".join(self._pending), None
        if data:
            super().send(data)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if self._pending is None:
            super().send(data)  # type: ignore[misc]
        else:
            self._pending.append(bytes(data))


class OneWriteHTTPConnection(_OneWrite, HTTPConnection):
    pass


class OneWriteHTTPSConnection(_OneWrite, HTTPSConnection):
    pass


class OneWriteHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = OneWriteHTTPConnection


class OneWriteHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = OneWriteHTTPSConnection


POOL_CLASSES = {"http": OneWriteHTTPConnectionPool, "https": OneWriteHTTPSConnectionPool}
