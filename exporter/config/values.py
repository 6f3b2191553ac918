"""Parsers for single config values. Each raises `ValueError` with a plain reason.

The reasons are shown after the key path (``targets.spe1.url: <reason>``), so they never
repeat the key and never echo a value that could be a secret.
"""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SPE_PORT = 8474
DEFAULT_LISTEN_PORT = 9474

DURATION_HINT = "must be a duration like 30s, 5m or 1h"
MAX_DURATION_DAYS = 365  # the longest duration any key accepts
MAX_DURATION_SECONDS = MAX_DURATION_DAYS * 86400.0
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")

TARGET_NAME_PATTERN = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.-]*")

# Windows' certificate dialog copies thumbprints with invisible direction marks.
_THUMBPRINT_NOISE = re.compile(r"[\s:\-\u200e\u200f\u202a-\u202e\ufeff]")
_HEX = re.compile(r"[0-9A-Fa-f]*")

_LISTEN_HINT = "must be host:port, e.g. 0.0.0.0:9474 or [::]:9474"


def parse_duration(value: object) -> float:
    """Seconds (> 0) from a number of seconds or a string like ``90s``, ``1h30m``, ``500ms``."""
    seconds = _duration_seconds(value)
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


def parse_interval(value: object) -> float:
    """A collector interval: a duration of at least one second."""
    seconds = _duration_seconds(value)
    if seconds < 1:
        raise ValueError("must be at least 1s")
    return seconds


def _duration_seconds(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(DURATION_HINT)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _PLAIN_NUMBER.fullmatch(text):
            seconds = float(text)
        elif _DURATION_FULL.fullmatch(text):
            seconds = sum(
                float(number) * _DURATION_UNITS[unit]
                for number, unit in _DURATION_PART.findall(text)
            )
        else:
            raise ValueError(DURATION_HINT)
    else:
        raise ValueError(DURATION_HINT)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(DURATION_HINT)
    if seconds > MAX_DURATION_SECONDS:
        # Beyond this, timers and datetime arithmetic overflow (OverflowError at start).
        raise ValueError(f"must be at most {MAX_DURATION_DAYS}d")
    return seconds


def format_duration(seconds: float) -> str:
    """``3600`` -> ``1h``, ``90`` -> ``1m30s``; used in messages and summaries."""
    if seconds < 1 or seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    text = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            text += f"{rest // size}{unit}"
            rest %= size
    return text


def normalise_thumbprint(value: object) -> str:
    """Upper-case hex without separators; 40 digits (SHA-1, as SPE shows it) or 64 (SHA-256)."""
    if not isinstance(value, str):
        raise ValueError("must be text (put it in quotes)")
    digits = _THUMBPRINT_NOISE.sub("", value)
    if not _HEX.fullmatch(digits):
        raise ValueError("must contain only hex digits 0-9 and A-F (':' and spaces allowed)")
    if len(digits) not in (40, 64):
        raise ValueError(
            f"must be 40 hex digits (SHA-1, as SPE shows it) or 64 (SHA-256), got {len(digits)}"
        )
    return digits.upper()


def normalise_spe_url(value: object) -> str:
    """``scheme://host:port`` of the SPE Management API; the port defaults to 8474."""
    hint = "must be a URL like https://spe.example.com:8474"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(hint)
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("must start with https:// (e.g. https://spe.example.com:8474)")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials; use username and password")
    host = parts.hostname
    if not host:
        raise ValueError(f"has no host name; {hint}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ValueError("has an invalid port (must be 1-65535)")
    if parts.path not in ("", "/"):
        raise ValueError("must not contain a path; give only scheme, host and port")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query or fragment")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or DEFAULT_SPE_PORT}"


def split_listen_address(value: object) -> tuple[str, int]:
    """``(host, port)`` of ``host:port``, ``[v6]:port`` or a bare host (port 9474).

    An empty host (``:9474``) means all IPv4 interfaces; port 0 picks a free port.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_LISTEN_HINT)
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(_LISTEN_HINT)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("has an invalid IPv6 address in brackets") from None
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError("must put an IPv6 address in brackets, e.g. [::]:9474")
    else:
        host, colon, port_part = text.partition(":")
        port_text = port_part if colon else None
        host = host or "0.0.0.0"
        if any(char.isspace() or char in "/[]" for char in host):
            raise ValueError(_LISTEN_HINT)
    if port_text is None:
        return host, DEFAULT_LISTEN_PORT
    if not port_text.isdigit():
        raise ValueError("port must be a number from 0 to 65535")
    port = int(port_text)
    if port > 65535:
        raise ValueError("port must be a number from 0 to 65535")
    return host, port


def join_listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_target_name(value: object) -> str:
    """Target names become the `target` label value, so keep them label- and path-friendly."""
    if not isinstance(value, str) or not TARGET_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            "invalid target name: must start with a letter or '_' and contain only "
            "letters, digits, '_', '.' and '-'"
        )
    return value


def resolve_path(value: object, base_dir: Path | None) -> Path:
    """Relative paths are relative to the config file's directory, not the working dir."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a file path")
    path = Path(str(value).strip()).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, with reasons that name the path."""
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a regular file: {path}")
    try:
        return path.read_bytes()
    except PermissionError:
        raise ValueError(f"file not readable (permission denied): {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read file: {path} ({exc.strerror})") from None


def read_secret_file(path: Path) -> str:
    """The secret in `path` (UTF-8, BOM tolerated) without trailing line breaks."""
    try:
        text = read_file_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"file is not UTF-8 text: {path}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ValueError(f"file is empty: {path}")
    return secret


def check_pem_file(path: Path) -> Path:
    """A CA file for `requests` must be PEM; a DER file fails later with an obscure TLS error."""
    if b"-----BEGIN CERTIFICATE-----" not in read_file_bytes(path):
        raise ValueError(f"no PEM certificate (-----BEGIN CERTIFICATE-----) in file: {path}")
    return path
