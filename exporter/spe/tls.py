"""TLS options of the SPE client and the transport adapters that implement them.

Three ways to trust an SPE server, because SPE ships with a self-signed certificate:

* default: verify the chain and host name against the system CAs, or ``ca_file``;
* ``thumbprint``: pin the server certificate. The chain and host name are *not* verified
  (unless ``ca_file`` is also given: then the chain is verified too);
  instead the digest of the certificate the server presents must equal the pin. SPE shows
  thumbprints as 40 hex characters (SHA-1, Windows style); a 64-hex SHA-256 form is also
  accepted. This trusts a self-signed SPE without turning verification off;
* ``insecure_skip_verify``: no verification at all (opt-in, warned about once).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool

from exporter.spe.transport import POOL_CLASSES, OneWriteHTTPSConnectionPool

log = logging.getLogger("exporter.spe")

_HEX_DIGITS = re.compile(r"[0-9a-f]+")
# Separators people paste from certificate viewers ("AB:CD:...", "ab cd ...", "ab-cd"), and
# the invisible direction marks Windows' certificate dialog copies along with a thumbprint.
_THUMBPRINT_SEPARATORS = re.compile(r"[\s:\-\u200e\u200f\u202a-\u202e\ufeff]")
_DIGEST_NAMES = {40: "SHA-1", 64: "SHA-256"}


def normalize_thumbprint(value: str) -> str:
    """Lower-case hex without separators; ``ValueError`` with a clear message otherwise."""
    compact = _THUMBPRINT_SEPARATORS.sub("", value).lower()
    if not _HEX_DIGITS.fullmatch(compact or "-"):
        raise ValueError(
            "thumbprint must contain only hex digits (0-9, A-F), optionally separated by "
            f"colons or spaces; got {value!r}"
        )
    if len(compact) not in _DIGEST_NAMES:
        raise ValueError(
            f"thumbprint has {len(compact)} hex digits; expected 40 (SHA-1, as SPE shows it, "
            "e.g. in GetServiceStatus) or 64 (SHA-256)"
        )
    return compact


def display_thumbprint(hex_digest: str) -> str:
    """SPE style: upper-case hex, no separators."""
    return hex_digest.upper()


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """Validated TLS settings of one client. ``thumbprint`` is stored normalised."""

    ca_file: str | None = None
    insecure_skip_verify: bool = False
    thumbprint: str | None = None

    def __post_init__(self) -> None:
        if self.thumbprint is not None:
            object.__setattr__(self, "thumbprint", normalize_thumbprint(self.thumbprint))
        if self.insecure_skip_verify and (self.ca_file is not None or self.thumbprint):
            # Skipping verification while also asking for a check: one of them is a mistake,
            # and silently picking one would leave the operator believing in the other.
            raise ValueError(
                "insecure_skip_verify cannot be combined with ca_file or thumbprint: use "
                "ca_file to verify against a CA, thumbprint to pin the certificate, or "
                "insecure_skip_verify alone"
            )
        if self.ca_file is not None and not os.path.exists(self.ca_file):
            raise ValueError(f"ca_file {self.ca_file!r} does not exist")

    @property
    def digest_name(self) -> str | None:
        return _DIGEST_NAMES[len(self.thumbprint)] if self.thumbprint else None

    @property
    def requests_verify(self) -> bool | str:
        """The ``verify=`` value for ``requests``.

        With a pin alone the chain is deliberately not verified (``False``): the pinning
        adapter checks the certificate digest instead, and urllib3 then treats the connection
        as verified (no InsecureRequestWarning). With a pin *and* ``ca_file`` both are
        checked: the chain against ``ca_file`` and the digest against the pin (the host name
        is not checked once a pin is set: the pin identifies the server more exactly).
        """
        if self.ca_file is not None:
            return self.ca_file
        return not (self.insecure_skip_verify or self.thumbprint)

    def make_adapter(self, pool_size: int) -> HTTPAdapter:
        """The transport adapter implementing these options (one pool per client)."""
        if self.thumbprint:
            return PinnedHTTPAdapter(self.thumbprint, pool_connections=1, pool_maxsize=pool_size)
        if self.insecure_skip_verify:
            return UnverifiedHTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        return SPEHTTPAdapter(pool_connections=1, pool_maxsize=pool_size)

    def warn_if_insecure(self, base_url: str) -> None:
        """Called once per client: the single warning that verification is off."""
        if self.insecure_skip_verify:
            log.warning(
                "TLS certificate verification is OFF for %s (insecure_skip_verify): anyone "
                "on the network path can read and alter the API traffic, including the "
                "credentials. Prefer ca_file or a thumbprint pin.",
                base_url,
            )


class SPEHTTPAdapter(HTTPAdapter):
    """The adapter of every SPE client: pools of one-write connections (``transport``).

    requests re-derives the pool settings on every request: it parses the URL and asks the
    file system whether ``verify`` (the CA path) exists and is a directory, three ``stat``
    calls per API call (issue 16). One adapter talks to one SPE server with fixed TLS
    options, so the answer is computed once per (origin, verify, cert) and reused; the CA
    file itself is still read by every new connection's handshake.
    """

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        super().init_poolmanager(*args, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)
        self._pool_keys: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        origin = "/".join((request.url or "").split("/", 3)[:3])  # scheme://host:port
        key = (origin, verify, cert)
        known = self._pool_keys.get(key)
        if known is None:
            known = super().build_connection_pool_key_attributes(request, verify, cert)
            if len(self._pool_keys) < 16:  # one origin in practice; never unbounded
                self._pool_keys[key] = known
        return dict(known[0]), dict(known[1])

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # The pool was created with these very settings (above): nothing to re-check.
        if (
            isinstance(verify, str)
            and cert is None
            and url.lower().startswith("https")
            and getattr(conn, "cert_reqs", None) == "CERT_REQUIRED"
            and verify in (getattr(conn, "ca_certs", None), getattr(conn, "ca_cert_dir", None))
        ):
            return
        super().cert_verify(conn, url, verify, cert)


class PinnedHTTPAdapter(SPEHTTPAdapter):
    """Accepts the server only if its certificate digest equals the pin.

    urllib3 checks ``assert_fingerprint`` (md5/SHA-1/SHA-256 by length) right after the
    handshake, before any request byte (so before the credentials) is sent.
    """

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self.fingerprint = fingerprint  # set before super(): it calls init_poolmanager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["assert_fingerprint"] = self.fingerprint
        super().init_poolmanager(*args, **pool_kwargs)


class _QuietHTTPSConnectionPool(OneWriteHTTPSConnectionPool):
    """An HTTPS pool that does not emit urllib3's per-request InsecureRequestWarning.

    The operator opted in to insecure mode and got one warning at client creation; a
    warning per request would flood the logs. Overriding the pool of this one adapter keeps
    the warning intact for every other HTTPS user in the process (a global
    ``urllib3.disable_warnings()`` would not).
    """

    def _validate_conn(self, conn: Any) -> None:
        # What HTTPSConnectionPool._validate_conn does, minus the warning.
        HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


class UnverifiedHTTPAdapter(SPEHTTPAdapter):
    """Adapter for ``insecure_skip_verify``: no chain check, no per-request warning."""

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        super().init_poolmanager(*args, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme["https"] = _QuietHTTPSConnectionPool


_FINGERPRINT_MISMATCH = re.compile(
    r'Fingerprints did not match\. Expected "([0-9a-f]+)", got "([0-9a-f]+)"'
)


def pin_mismatch(error_text: str) -> tuple[str, str] | None:
    """(expected, actual) thumbprints if ``error_text`` is urllib3's pin-mismatch error."""
    match = _FINGERPRINT_MISMATCH.search(error_text)
    if not match:
        return None
    return display_thumbprint(match.group(1)), display_thumbprint(match.group(2))
