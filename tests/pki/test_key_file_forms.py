"""Key files in the forms operators have: a key alone, or certificate(s) in front of an (encrypted) key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ocppsec.pki.errors import InputError, UsageError, WrongPassphraseError
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.keys.files import is_encrypted_key, key_to_pem, load_key_pem
from ocppsec.pki.pem import certificates_to_pem

AT = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def cert_pem() -> bytes:
    hierarchy = Hierarchy.build(HierarchyConfig.default(cso_name="ACME CSO"), at=AT)
    return certificates_to_pem([hierarchy.ca("csms-root").certificate]).encode()


def test_certificate_then_encrypted_key_loads_with_the_passphrase(cert_pem: bytes) -> None:
    key = generate_key(KeySpec.P256)
    combined = cert_pem + key_to_pem(key, b"secret")  # what `ocppsec pki export NAME --key` writes
    assert is_encrypted_key(combined) and not is_encrypted_key(cert_pem + key_to_pem(key, None))
    loaded = load_key_pem(combined, b"secret", label="combined.pem")
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    with pytest.raises(UsageError, match=r"combined\.pem is encrypted and no passphrase was given"):
        load_key_pem(combined, None, label="combined.pem")
    with pytest.raises(WrongPassphraseError, match=r"^wrong passphrase for combined\.pem \(check OCPPSEC_PASSPHRASE\)$"):
        load_key_pem(combined, b"not it", label="combined.pem")


def test_files_without_exactly_one_key_are_refused(cert_pem: bytes) -> None:
    with pytest.raises(InputError, match=r"c\.pem holds no private key \(only CERTIFICATE PEM blocks\)"):
        load_key_pem(cert_pem, None, label="c.pem")
    two = key_to_pem(generate_key(KeySpec.P256), None) + key_to_pem(generate_key(KeySpec.P256), None)
    with pytest.raises(InputError, match="holds 2 private keys"):
        load_key_pem(two, None, label="two.pem")
    with pytest.raises(InputError, match="is empty"):
        load_key_pem(b"\n", None, label="empty.pem")
    with pytest.raises(InputError, match="neither PEM nor DER"):
        load_key_pem(b"\x00garbage", None, label="g.bin")
