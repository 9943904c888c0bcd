"""Encrypted key files: a wrong passphrase is always said to be one; a damaged file is not."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ocppsec.pki.errors import InputError, WrongPassphraseError
from ocppsec.pki.keys.files import key_to_pem, load_key_pem


@pytest.fixture(scope="module")
def encrypted() -> bytes:
    return key_to_pem(ec.generate_private_key(ec.SECP256R1()), b"the right one")


def test_the_right_passphrase_loads(encrypted: bytes) -> None:
    key = load_key_pem(encrypted, b"the right one")
    assert isinstance(key.public_key(), ec.EllipticCurvePublicKey)


def test_every_wrong_passphrase_is_a_wrong_passphrase(encrypted: bytes) -> None:
    """About one wrong passphrase in 256 passes the padding check and fails later as ASN.1; 3,000 tries
    meet such a one with a probability of 1 - (255/256)^3000, all but certainly."""
    kinds = set()
    for i in range(3000):
        with pytest.raises(WrongPassphraseError) as exc:
            load_key_pem(encrypted, f"wrong {i}".encode())
        kinds.add(exc.value.message)
    assert kinds == {"wrong passphrase for key"}


def test_a_truncated_encrypted_key_is_a_damaged_file(encrypted: bytes) -> None:
    lines = encrypted.splitlines()
    damaged = b"\n".join([*lines[:3], lines[-1]]) + b"\n"  # the base64 body cut short
    with pytest.raises(InputError) as exc:
        load_key_pem(damaged, b"the right one")
    assert not isinstance(exc.value, WrongPassphraseError)
    assert "not a readable private key" in exc.value.message


def test_a_traditional_encrypted_pem_with_a_wrong_passphrase() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.BestAvailableEncryption(b"right"))
    assert b"DEK-Info" in pem
    for i in range(300):
        with pytest.raises(WrongPassphraseError):
            load_key_pem(pem, f"wrong {i}".encode())
