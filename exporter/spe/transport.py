"""Connection classes of the SPE client's pools: a request goes out in one write.

urllib3 writes the request head and the body separately: two TLS records and two
``send`` calls per API call. Each call is a point where the thread gives up the GIL; with
dozens of polling threads and a few milliseconds of CPU per call, every give-up can cost
the thread a wait behind the others, so halving them measurably shortens poll cycles
(benchmarks/RESULTS.md). SPE request bodies are small form posts, so joining head and
body costs nothing worth mentioning.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
            _watch(getattr(self, "sock", None))
            return
        self._pending = []
        try:
            super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]
        except BaseException:
            self._pending = None  # nothing half-sent: the connection is discarded anyway
            raise
        data, self._pending = b"".join(self._pending), None
        _watch(getattr(self, "sock", None))
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


# -- wall-clock deadline per call ------------------------------------------------------------
# urllib3's timeouts apply per socket operation: an SPE (or a proxy) that sends its answer
# one byte every few seconds never hits a read timeout, and the poll never ends. A call
# runs inside ``call_deadline(seconds)``; every connection that sends a request in it is
# registered, and one watchdog thread shuts down the sockets of calls past their deadline,
# which makes the blocked read fail at once.

_local = threading.local()
_watch_lock = threading.Lock()
_watched: dict[int, tuple[float, socket.socket]] = {}
_watchdog: threading.Thread | None = None
WATCHDOG_TICK = 0.25


class CallDeadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due = time.monotonic() + seconds
        self.socks: list[socket.socket] = []

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.due


@contextmanager
def call_deadline(seconds: float) -> Iterator[CallDeadline]:
    """Calls in this block (this thread) end by ``seconds`` from now, or by the deadline of
    an enclosing block if that is earlier (a long-running task's own deadline)."""
    deadline = CallDeadline(seconds)
    previous = getattr(_local, "deadline", None)
    if previous is not None:
        deadline.due = min(deadline.due, previous.due)
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = previous
        with _watch_lock:
            for sock in deadline.socks:
                _watched.pop(id(sock), None)


def _watch(sock: socket.socket | None) -> None:
    deadline: CallDeadline | None = getattr(_local, "deadline", None)
    if deadline is None or sock is None:
        return
    global _watchdog
    with _watch_lock:
        _watched[id(sock)] = (deadline.due, sock)
        deadline.socks.append(sock)
        if _watchdog is None:
            _watchdog = threading.Thread(target=_run_watchdog, name="spe-deadlines", daemon=True)
            _watchdog.start()


def _run_watchdog() -> None:
    while True:
        time.sleep(WATCHDOG_TICK)
        now = time.monotonic()
        with _watch_lock:
            overdue = [(key, sock) for key, (due, sock) in _watched.items() if due <= now]
            for key, _ in overdue:
                del _watched[key]
        for _, sock in overdue:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: see web
            except OSError:
                pass
