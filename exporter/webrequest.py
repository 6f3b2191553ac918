"""Parsing a request head: the request line and the header fields (RFC 9112), strictly.

The standard library's ``BaseHTTPRequestHandler.parse_request`` hands the header lines to
``email.parser``: about half of the exporter's CPU time per scrape of a cached body
(profiled, issue 16), and lenient where an exposed endpoint should not be (a line without
a colon silently ends the headers, folded lines are joined). This parser accepts what
clients send (Prometheus, curl, browsers, probes) and refuses everything else with a
message naming what was wrong:

* a field line is ``name ":" OWS value OWS``; the name is a token (no whitespace, also not
  before the colon: RFC 9112 section 5.1 requires a 400), the value has no control
  character but HTAB (no NUL, no bare CR);
* obsolete line folding (a line starting with whitespace) is refused (RFC 9112 5.2);
* more than one ``Host`` is refused (RFC 9112 3.2);
* at most ``MAX_FIELDS`` fields (431, like the standard library's limit of 100 lines);
  the head's byte budget is the caller's reader's (``weblimits.HeadReader``).

Lines may end in CRLF or a bare LF (RFC 9112 2.2 allows a recipient to accept LF).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

MAX_FIELDS = 100
MAX_LINE = 65536  # bytes per line (the standard library's limit); the head budget is smaller

_TOKEN_CHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"  # tchar (RFC 9110 5.6.2)
_CONTROL_CHARS = r"\x00-\x08\x0a-\x1f\x7f"  # CTL but HTAB
# name ":" OWS value OWS, where name is a token and value has no CTL but HTAB (the
# whitespace around the value is stripped after the match: a lazy pattern backtracks).
_FIELD = re.compile(rf"({_TOKEN_CHAR}+):([^{_CONTROL_CHARS}]*)")
_TOKEN = re.compile(rf"{_TOKEN_CHAR}+")
_CONTROL = re.compile(rf"[{_CONTROL_CHARS}]")


class BadRequest(Exception):
    """The head cannot be accepted: answer ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestHeaders:
    """Header fields of one request: case-insensitive lookup, repeated names kept in
    order (the subset of ``email.message.Message`` the server uses)."""

    __slots__ = ("_fields", "_values")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        self._values: dict[str, list[str]] = {}
        for name, value in fields:
            self._values.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, failobj: list[str] | None = None) -> list[str] | None:
        """Every value of ``name`` in order, or ``failobj`` when there is none."""
        values = self._values.get(name.lower())
        return list(values) if values else failobj

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [name for name, _ in self._fields]

    def values(self) -> list[str]:
        return [value for _, value in self._fields]


class TooManyFields(BadRequest):
    def __init__(self) -> None:
        super().__init__(431, f"more than {MAX_FIELDS} header fields")


def read_fields(readline: Callable[[int], bytes]) -> RequestHeaders:
    """Read and parse the header fields up to the empty line (or the end of input).

    ``readline`` is the connection's (its byte budget raises on its own); a line over
    ``MAX_LINE`` or field ``MAX_FIELDS + 1`` raises ``BadRequest`` with 431.
    """
    fields: list[tuple[str, str]] = []
    while True:
        raw = readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        if raw in (b"\r\n", b"\n", b""):
            break
        if len(fields) == MAX_FIELDS:
            raise TooManyFields()
        line = raw.decode("iso-8859-1")
        line = line[:-2] if line.endswith("\r\n") else line.rstrip("\n")
        match = _FIELD.fullmatch(line)
        if match is None:
            raise BadRequest(400, _field_error(line))
        fields.append((match[1], match[2].strip(" \t")))
    headers = RequestHeaders(fields)
    hosts = headers.get_all("Host")
    if hosts is not None and len(hosts) > 1:
        raise BadRequest(400, "more than one Host header")
    return headers


def _field_error(line: str) -> str:
    """Why ``line`` is not a header field (for the 400 response)."""
    shown = repr(line[:60] + ("..." if len(line) > 60 else ""))
    if line[:1] in (" ", "\t"):
        return f"obsolete line folding is not accepted: {shown}"
    name, colon, value = line.partition(":")
    if not colon:
        return f"header line without a colon: {shown}"
    if not name:
        return f"header line without a name: {shown}"
    if name.rstrip(" \t") != name:
        return f"whitespace between header name and colon: {shown}"
    if not _TOKEN.fullmatch(name):
        return f"invalid character in header name: {shown}"
    if _CONTROL.search(value):
        return f"control character in the value of header {name}: {shown}"
    return f"malformed header line: {shown}"  # not reached: the checks above cover _FIELD


def parse_request_line(line: str) -> tuple[str, str, str | None, tuple[int, int]]:
    """``(method, target, version, (major, minor))`` of a non-empty request line (CRLF
    removed); version is None for an HTTP/0.9 line (``GET /``), numbered (0, 9). Raises
    ``BadRequest``: 400 for a malformed line or version, 505 for HTTP/2 and later."""
    words = line.split()
    version, number = None, (0, 9)
    if len(words) >= 3:
        version = words[-1]
        parsed = _version_number(version)
        if parsed is None:
            raise BadRequest(400, f"Bad request version ({version!r})")
        if parsed >= (2, 0):
            raise BadRequest(505, f"Invalid HTTP version ({version[5:]})")
        number = parsed
    if not 2 <= len(words) <= 3:
        raise BadRequest(400, f"Bad request syntax ({line!r})")
    if version is None and words[0] != "GET":
        raise BadRequest(400, f"Bad HTTP/0.9 request type ({words[0]!r})")
    return words[0], words[1], version, number


def _version_number(version: str) -> tuple[int, int] | None:
    if not version.startswith("HTTP/"):
        return None
    parts = version[5:].split(".")
    if len(parts) != 2 or not all(p.isdigit() and p.isascii() and len(p) <= 10 for p in parts):
        return None
    return int(parts[0]), int(parts[1])
