"""Root files: parsed once per content, and a changed file is trusted as it is now."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ocppsec.pki.errors import InputError
from ocppsec.security_profiles import tls


def _root(cn: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=9))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM)


def _trusted(ctx: ssl.SSLContext) -> set[str]:
    return {dict(x[0] for x in c["subject"])["commonName"] for c in ctx.get_ca_certs()}


def test_a_root_file_is_parsed_once_and_a_rewritten_one_is_read_as_it_is_now(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from ocppsec.pki import pem

    parses: list[int] = []
    real = pem.load_certificates
    monkeypatch.setattr(pem, "load_certificates", lambda *a, **k: parses.append(1) or real(*a, **k))
    path = tmp_path / "csms-root.pem"
    first, second = _root("Root A"), _root("Root B")
    path.write_bytes(first)
    assert _trusted(tls.client_context([path])) == {"Root A"}
    assert _trusted(tls.client_context([path])) == {"Root A"}
    assert len(parses) == 1  # the second context did not parse the same bytes again
    path.write_bytes(second)  # in place, at once: same size, maybe the same mtime
    assert _trusted(tls.client_context([path])) == {"Root B"}
    path.write_bytes(b"garbage")
    with pytest.raises(InputError):
        tls.client_context([path])
    path.write_bytes(first)
    assert _trusted(tls.client_context([path])) == {"Root A"}
    assert len(parses) == 3  # B and the garbage; A's bytes were seen before
