"""Simulator: ties scenario state, certificate and HTTPS server together; start/stop."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .certs import self_signed, thumbprints
from .clock import SimClock
from .scenario import Scenario, load_scenario
from .server import SimHTTPServer
from .state import SimState

STOP_TIMEOUT = 2.0


class Simulator:
    """A simulated SPE Management API over HTTPS. Start once; usable as a context manager."""

    def __init__(
        self,
        scenario: Scenario | dict[str, Any] | str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "admin",
        password: str = "admin-password",
        certfile: str | None = None,
        keyfile: str | None = None,
        clock: SimClock | None = None,
    ) -> None:
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.state = SimState(scenario, clock)
        self.state.set_credentials(username, password)
        self.host = host
        self._port = port
        self._certfile = certfile
        self._keyfile = keyfile
        self._stop_event = threading.Event()
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self.ca_file: str = ""
        self.thumbprint_sha1: str = ""
        self.thumbprint_sha256: str = ""

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def start(self) -> Simulator:
        """Listen and serve in background threads; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        if self._certfile:
            certfile, keyfile = self._certfile, self._keyfile or self._certfile
            self.thumbprint_sha1, self.thumbprint_sha256 = thumbprints(certfile)
        else:
            self._tmpdir = tempfile.mkdtemp(prefix="spe-simulator-")
            files = self_signed(self._tmpdir, self.host)
            certfile, keyfile = files.certfile, files.keyfile
            self.thumbprint_sha1 = files.thumbprint_sha1
            self.thumbprint_sha256 = files.thumbprint_sha256
        self.ca_file = certfile
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # the official wrapper requires >= 1.2
        context.load_cert_chain(certfile, keyfile)
        self.state.api_thumbprint = self.thumbprint_sha1
        self._server = SimHTTPServer((self.host, self._port), context, self.state, self._stop_event)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="spe-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and end every connection thread promptly."""
        if self._server is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        self._stop_event.set()
        self.state.tasks.stop()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections(max(0.1, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        # keep _server so .port/.url stay readable for log messages after stop

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
