"""TLS and basic auth for the exporter's own endpoint, in the exporter-toolkit format.

The file given with ``--web.config.file`` uses the same keys as Prometheus' own
exporters (``web-config.yml``), so operators can reuse what they already have:

    tls_server_config:
      cert_file: /etc/mailstore-spe-exporter/tls.crt
      key_file: /etc/mailstore-spe-exporter/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: /etc/mailstore-spe-exporter/clients-ca.pem
      min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...   # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Unknown keys are errors, like in the main config. Passwords are only ever compared
against their bcrypt hashes; successful checks are cached (by a SHA-256 of the
credentials) because bcrypt is deliberately slow and Prometheus scrapes often.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.config.files import FileProblem, bounded_loader, read_text_file

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version"}  # fmt: skip
_HTTP_KEYS = {"headers"}


class WebConfigError(Exception):
    def __init__(self, errors: list[str], source: str) -> None:
        self.errors = errors
        self.source = source
        super().__init__("\n".join(f"{source}: {e}" for e in errors))


@dataclass
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: dict[str, str] = field(default_factory=dict)

    def authenticator(self) -> BasicAuth | None:
        return BasicAuth(self.users) if self.users else None


class AuthBusy(Exception):
    """Too many password checks are running or waiting: answer 503, try again later."""


BCRYPT_WORKERS = 2  # bcrypt checks at once (it releases the GIL: one per core)
BCRYPT_QUEUE = 8  # checks allowed to wait for a worker; beyond that: AuthBusy at once
BCRYPT_WAIT_SECONDS = 2.0  # longest wait for a worker before AuthBusy


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    An unknown user costs the same bcrypt work as a known one (checked against a dummy
    hash of the highest configured cost), so response times do not tell which users
    exist. bcrypt work is bounded: a flood of wrong passwords queues at most
    ``BCRYPT_QUEUE`` checks and is answered 503 beyond that, while credentials that were
    verified before are recognised from a cache without bcrypt, so valid scrapes stay fast.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        import bcrypt  # only needed when basic auth is configured

        self._bcrypt = bcrypt
        self._users = users
        self._lock = threading.Lock()
        self._verified: set[bytes] = set()
        self._workers = threading.Semaphore(BCRYPT_WORKERS)
        self._pending = 0
        cost = max((_bcrypt_cost(h) for h in users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(cost))

    def check(self, header: str | None) -> bool:
        """True for valid credentials; raises ``AuthBusy`` when bcrypt work is saturated."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        known = user in self._users
        stored = self._users[user] if known else self._dummy
        digest = hashlib.sha256(user.encode() + b"\0" + password.encode() + b"\0" + stored).digest()
        with self._lock:
            if known and any(hmac.compare_digest(digest, seen) for seen in self._verified):
                return True
        ok = self._bcrypt_check(password.encode(), stored) and known
        if ok:
            with self._lock:
                self._verified.add(digest)
        return ok

    def _bcrypt_check(self, password: bytes, stored: bytes) -> bool:
        with self._lock:
            if self._pending >= BCRYPT_WORKERS + BCRYPT_QUEUE:
                raise AuthBusy
            self._pending += 1
        try:
            if not self._workers.acquire(timeout=BCRYPT_WAIT_SECONDS):
                raise AuthBusy
            try:
                return self._bcrypt.checkpw(password, stored)
            except ValueError:
                return False
            finally:
                self._workers.release()
        finally:
            with self._lock:
                self._pending -= 1


def _bcrypt_cost(hashed: bytes) -> int:
    try:
        return min(max(int(hashed.split(b"$")[2]), 4), 31)
    except (IndexError, ValueError):
        return 10


def _path(value: Any, key: str, base: Path, errors: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        errors.append(f"{key}: must be a file path")
        return None
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.is_file():
        errors.append(f"{key}: file not found: {path}")
        return None
    return path


_BoundedSafeLoader = bounded_loader(yaml.SafeLoader)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    source = str(path)
    try:
        data = yaml.load(read_text_file(path), Loader=_BoundedSafeLoader)
    except FileProblem as exc:
        raise WebConfigError([str(exc)], source) from None
    except yaml.YAMLError as exc:
        raise WebConfigError([f"invalid YAML: {exc}"], source) from None
    return parse_web_config(data or {}, source=source, base_dir=Path(path).resolve().parent)


def parse_web_config(data: Any, *, source: str = "<web-config>", base_dir: Path) -> WebConfig:
    errors: list[str] = []
    if not isinstance(data, dict):
        raise WebConfigError(["the top level must be a mapping"], source)
    for key in sorted(set(data) - _TOP_KEYS):
        errors.append(f"unknown key '{key}'")
    config = WebConfig()

    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        errors.append("basic_auth_users: must be a mapping of user name to bcrypt hash")
        users = {}
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            errors.append(f"basic_auth_users.{user}: must be a bcrypt hash ($2y$..., $2b$...)")
            continue
        config.users[str(user)] = hashed.encode()
    if config.users:
        try:
            import bcrypt  # noqa: F401
        except ImportError:
            errors.append("basic_auth_users: needs the 'bcrypt' package (pip install bcrypt)")

    http = data.get("http_server_config") or {}
    if not isinstance(http, dict):
        errors.append("http_server_config: must be a mapping")
        http = {}
    for key in sorted(set(http) - _HTTP_KEYS):
        errors.append(f"http_server_config: unknown key '{key}'")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        errors.append("http_server_config.headers: must map header names to strings")
    else:
        config.headers = dict(headers)

    tls = data.get("tls_server_config")
    if tls is not None:
        config.ssl_context = _tls_context(tls, base_dir, errors)
    if errors:
        raise WebConfigError(errors, source)
    return config


def _tls_context(tls: Any, base: Path, errors: list[str]) -> ssl.SSLContext | None:
    prefix = "tls_server_config"
    if not isinstance(tls, dict):
        errors.append(f"{prefix}: must be a mapping")
        return None
    for key in sorted(set(tls) - _TLS_KEYS):
        errors.append(f"{prefix}: unknown key '{key}'")
    cert = _path(tls.get("cert_file"), f"{prefix}.cert_file", base, errors)
    key = _path(tls.get("key_file"), f"{prefix}.key_file", base, errors)
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH_TYPES:
        errors.append(f"{prefix}.client_auth_type: must be one of {', '.join(CLIENT_AUTH_TYPES)}")
        auth_type = "NoClientCert"
    client_ca = None
    if tls.get("client_ca_file") is not None:
        client_ca = _path(tls.get("client_ca_file"), f"{prefix}.client_ca_file", base, errors)
    elif auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        errors.append(f"{prefix}.client_ca_file: required with client_auth_type {auth_type}")
    versions = {}
    for name in ("min_version", "max_version"):
        value = tls.get(name)
        if value is not None and value not in TLS_VERSIONS:
            errors.append(f"{prefix}.{name}: must be one of {', '.join(TLS_VERSIONS)}")
        elif value is not None:
            versions[name] = TLS_VERSIONS[value]
    if errors or cert is None or key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = versions.get("min_version", ssl.TLSVersion.TLSv1_2)
    if "max_version" in versions:
        context.maximum_version = versions["max_version"]
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        errors.append(f"{prefix}: cannot load cert_file/key_file: {exc}")
        return None
    context.verify_mode = CLIENT_AUTH_TYPES[auth_type]
    if client_ca is not None:
        try:
            context.load_verify_locations(str(client_ca))
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"{prefix}.client_ca_file: cannot load: {exc}")
            return None
    elif context.verify_mode != ssl.CERT_NONE:
        # RequestClientCert / RequireAnyClientCert without a CA: Python cannot accept an
        # unverified client certificate, so the system trust store is used.
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context
