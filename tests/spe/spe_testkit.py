"""Helpers of the SPE client tests: envelopes and a scripted HTTPS server."""

from __future__ import annotations

import hashlib
import http.server
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trustme

BOM = b"\xef\xbb\xbf"
USERNAME = "monitor"
PASSWORD = "s3cr3t-Pa55word!"


def envelope_bytes(result=None, *, status="succeeded", bom=True, **fields) -> bytes:
    body = {
        "error": None,
        "token": None,
        "statusVersion": 2,
        "statusCode": status,
        "percentProgress": None,
        "statusText": None,
        "result": result,
        "logOutput": None,
    }
    body.update(fields)
    return (BOM if bom else b"") + json.dumps(body).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = field(default_factory=lambda: envelope_bytes({"ok": True}))
    delay: float = 0.0
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering
    drip: float = 0.0  # send the body one byte every this many seconds (a slow sender)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """An HTTPS server answering every request with ``reply(request)``; records requests."""

    def __init__(self, ca: trustme.CA, tmp: Path) -> None:
        self.requests: list[SeenRequest] = []
        self.reply: Callable[[SeenRequest], Reply] = lambda _req: Reply()
        self.ca_file = str(tmp / "scripted-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.configure_cert(context)
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        self.thumbprint_sha1 = hashlib.sha1(der).hexdigest().upper()
        self.thumbprint_sha256 = hashlib.sha256(der).hexdigest()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = SeenRequest(
                    "POST", self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                server.requests.append(seen)
                reply = server.reply(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if reply.drip:
                    for i in range(len(reply.body)):
                        try:
                            self.wfile.write(reply.body[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return  # the client gave up
                        time.sleep(reply.drip)
                    return
                self.wfile.write(reply.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def respond(self, reply: Reply) -> None:
        self.reply = lambda _req: reply

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
