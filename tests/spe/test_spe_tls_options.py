"""TLS option validation and thumbprint normalisation."""

import pytest

from exporter.spe.tls import TLSOptions, normalize_thumbprint, pin_mismatch

SHA1 = "0123456789ABCDEF0123456789ABCDEF01234567"
SHA256 = "ab" * 32


@pytest.mark.parametrize(
    "value",
    [
        SHA1,
        SHA1.lower(),
        ":".join(SHA1[i : i + 2] for i in range(0, 40, 2)),
        " ".join(SHA1[i : i + 2] for i in range(0, 40, 2)),
        f"  {SHA1}\n",
        "\u200e" + SHA1 + "\u200f",  # as copied from the Windows certificate dialog
    ],
)
def test_sha1_thumbprint_forms_normalise_to_lower_hex(value):
    assert normalize_thumbprint(value) == SHA1.lower()


def test_sha256_thumbprint_is_accepted():
    assert normalize_thumbprint(SHA256.upper()) == SHA256


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "only hex digits"),
        ("Z" * 40, "only hex digits"),
        ("ab" * 16, "32 hex digits; expected 40"),
        (SHA1 + "0", "41 hex digits"),
    ],
)
def test_invalid_thumbprint_is_a_value_error_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message):
        TLSOptions(thumbprint=value)


def test_insecure_excludes_the_other_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    for other in ({"thumbprint": SHA1}, {"ca_file": str(ca)}):
        with pytest.raises(ValueError, match="insecure_skip_verify cannot be combined"):
            TLSOptions(insecure_skip_verify=True, **other)


def test_missing_ca_file_is_reported(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        TLSOptions(ca_file=str(tmp_path / "nope.pem"))


def test_requests_verify_value_per_mode(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert TLSOptions().requests_verify is True
    assert TLSOptions(ca_file=str(ca)).requests_verify == str(ca)
    assert TLSOptions(insecure_skip_verify=True).requests_verify is False
    # Pinning replaces chain verification; the adapter checks the digest instead.
    assert TLSOptions(thumbprint=SHA1).requests_verify is False
    # Pin and CA file together: the chain is verified as well as the digest.
    assert TLSOptions(ca_file=str(ca), thumbprint=SHA1).requests_verify == str(ca)


def test_pin_mismatch_parses_urllib3_message_into_spe_style():
    text = f'Fingerprints did not match. Expected "{SHA1.lower()}", got "{"cd" * 20}"'
    assert pin_mismatch(text) == (SHA1, "CD" * 20)
    assert pin_mismatch("certificate verify failed") is None
