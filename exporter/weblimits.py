"""Hard limits of the exporter's HTTP endpoint that hold before authentication.

The server is the standard library's ``http.server`` (why, with figures: docs/design.md,
"HTTP server"; the request head is parsed by ``exporter.webrequest``). It has no limits
an exposed endpoint needs: it reads up to 100 header lines of 64 KiB each before a
handler sees anything,
its timeout is per socket read (a client sending one byte every few seconds never
expires), it spins on ``accept()`` when the process is out of file descriptors, and
it starts one thread per connection without bound. This module adds exactly those:

* ``HeadReader``: the request line and headers together may not exceed a byte budget;
  reading stops at the budget, not after the headers were parsed.
* ``Deadlines``: a wall-clock deadline per phase of a connection (the request head
  must arrive within ``HEAD_SECONDS``, a response must be written within
  ``RESPONSE_SECONDS``); one thread shuts down overdue sockets.
* ``ConnectionSlots``: at most ``MAX_CONNECTIONS`` connections (= handler threads). When
  all are taken, the connection that has waited longest for its request head (idle or
  slow: a slowloris) is shut down to make room; only when every connection is busy
  writing a response is a new one refused.
* ``accept_backoff``: sleep on EMFILE/ENFILE instead of spinning, logged once a minute.
"""

from __future__ import annotations

import errno
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

log = logging.getLogger(__name__)

HEAD_SECONDS = 30.0  # the whole request line + headers, also the keep-alive idle time
RESPONSE_SECONDS = 120.0  # writing one response (a 50 MB body to a slow reader)
MAX_CONNECTIONS = 64  # open connections = handler threads; more are closed at once
_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_BACKOFF_SECONDS = 0.5


class HeadTooLarge(http.client.LineTooLong):
    """The request head went over its byte budget (answered with 431)."""


class HeadReader:
    """Wraps a connection's ``rfile``: ``readline`` counts against the budget of the
    current request head, so at most ``budget`` bytes are ever buffered for it."""

    def __init__(self, raw: BinaryIO, budget: int) -> None:
        self._raw = raw
        self._budget = budget
        self._left = budget

    def start_request(self) -> None:
        self._left = self._budget

    def readline(self, limit: int = -1) -> bytes:
        allowed = self._left + 1 if limit < 0 else min(limit, self._left + 1)
        line = self._raw.readline(allowed)
        self._left -= len(line)
        if self._left < 0:
            raise HeadTooLarge(f"request head over {self._budget} bytes")
        return line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed


class Deadlines:
    """Wall-clock deadlines of open connections; overdue sockets are shut down.

    Shutting the socket down (not closing it: the handler thread still owns the file
    descriptor) makes the blocked read or write in the handler fail at once, so the
    handler ends and its thread and connection slot are freed.
    """

    def __init__(self, tick: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._due: dict[socket.socket, tuple[float, bool]] = {}  # -> (due, waiting for head)
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.expired = 0  # connections shut down for being too slow (tests, debugging)
        self.evicted = 0  # idle connections shut down to make room for a new one

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="web-deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def arm(self, sock: socket.socket, seconds: float, *, head: bool) -> None:
        with self._lock:
            self._due[sock] = (time.monotonic() + seconds, head)

    def evict_oldest_waiting(self) -> bool:
        """Shut down the connection waiting longest for a request head (to make room)."""
        with self._lock:
            waiting = [(due, s) for s, (due, head) in self._due.items() if head]
            if not waiting:
                return False
            sock = min(waiting, key=lambda item: item[0])[1]
            del self._due[sock]
        self.evicted += 1
        _shutdown(sock)
        return True

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                overdue = [s for s, (due, _) in self._due.items() if due <= now]
                for sock in overdue:
                    del self._due[sock]
            for sock in overdue:
                self.expired += 1
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        # socket.socket's own shutdown, also for an SSLSocket: its override would tear
        # down the TLS state under the handler thread still using it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its handler


class ConnectionSlots:
    """A counter of open connections with a hard cap (no waiting: full means refuse)."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.open = 0
        self.refused = 0
        self._last_warning = 0.0

    def take(self, make_room: Callable[[], bool] | None = None) -> bool:
        """A slot for a new connection. When full, ``make_room`` may shut down an idle
        connection: the new one is admitted because that one's slot is about to free."""
        with self._lock:
            if self.open < self.limit:
                self.open += 1
                return True
        if make_room is not None and make_room():
            with self._lock:
                self.open += 1
            return True
        with self._lock:
            self.refused += 1
            warn = time.monotonic() - self._last_warning > 60
            if warn:
                self._last_warning = time.monotonic()
        if warn:
            log.warning(
                "connection limit reached; new connections are closed at once",
                extra={"limit": self.limit, "refused_total": self.refused},
            )
        return False

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


class AcceptBackoff:
    """Out of file descriptors: wait before the next ``accept`` instead of spinning."""

    def __init__(self, seconds: float = ACCEPT_BACKOFF_SECONDS) -> None:
        self.seconds = seconds
        self.count = 0
        self._last_warning = 0.0

    def handle(self, exc: OSError) -> bool:
        """True if ``exc`` was a resource shortage (and was waited out)."""
        if exc.errno not in _ACCEPT_ERRORS:
            return False
        self.count += 1
        if time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.error(
                "cannot accept connections: out of file descriptors or memory; backing off",
                extra={"error": errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                       "occurrences": self.count},
            )
        time.sleep(self.seconds)
        return True
