"""The simulator's TLS certificate: a fresh self-signed one, or one given by the user.

SPE ships with a self-signed certificate on 8474, so the default mirrors that. Thumbprints are
hashes over the DER encoding; SHA-1 in upper-case hex is how SPE/Windows shows them.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertFiles:
    certfile: str
    keyfile: str
    thumbprint_sha1: str
    thumbprint_sha256: str


def thumbprints(certfile: str) -> tuple[str, str]:
    """(SHA-1 upper-case hex, SHA-256 hex) of the first certificate in a PEM file."""
    cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper(), hashlib.sha256(der).hexdigest()


def self_signed(directory: str, host: str) -> CertFiles:
    """Write a self-signed cert + key valid for 127.0.0.1, localhost and ``host``."""
    key = ec.generate_private_key(ec.SECP256R1())  # fast to generate, unlike RSA
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "MailStore SPE Simulator"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailstore-spe-exporter"),
        ]
    )
    alt_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if str(ip) != "127.0.0.1":
            alt_names.append(x509.IPAddress(ip))
    except ValueError:
        if host and host != "localhost":
            alt_names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # CA:TRUE lets clients use this very file as their trust anchor (verify=ca_file).
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = Path(directory) / "simulator-cert.pem"
    key_path = Path(directory) / "simulator-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    sha1, sha256 = thumbprints(str(cert_path))
    return CertFiles(str(cert_path), str(key_path), sha1, sha256)
