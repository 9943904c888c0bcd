"""Keys that sign outside memory, as pyca private keys: pyca's four builders sign with them; bad signatures stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, padding, rsa
from cryptography.x509 import ocsp

from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.csr import make_csr
from ocppsec.pki.errors import KeyError_
from ocppsec.pki.keys import DelegatedEcKey, LocalKey, PublicKey, SignatureScheme, as_private_key
from ocppsec.pki.names import make_name
from ocppsec.pki.profiles import PROFILES
from ocppsec.pki.revocation.crl import CrlEntry, build_crl

from .corpus import AT

NAME = make_name({"O": "Example CSO", "CN": "Remote CA"})


@dataclass
class RemoteKey:
    """A signing key known only by sign(data, scheme) and public_key(), like an HSM behind an API."""

    inner: LocalKey
    garbage: bool = False
    label: str = "remote"
    calls: list[SignatureScheme] = field(default_factory=list)

    def public_key(self) -> PublicKey:
        return self.inner.public_key()

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        self.calls.append(scheme)
        if self.garbage:  # well-formed, wrong: ECDSA r = s = 1, or an RSA block of ones
            return b"\x30\x06\x02\x01\x01\x02\x01\x01" if scheme.is_ecdsa else b"\x01" * 256
        return self.inner.sign(data, scheme)


def _root(key: RemoteKey) -> x509.Certificate:
    request = CertificateRequest(PROFILES["csms-root"], NAME, key.public_key(), AT, 365, 1)
    return build_certificate(request, issuer_certificate=None, issuer_key=key)


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa"])
def test_all_four_builders_sign_with_a_remote_key(kind: str) -> None:
    priv = {"p256": lambda: ec.generate_private_key(ec.SECP256R1()), "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
            "rsa": lambda: rsa.generate_private_key(65537, 2048)}[kind]()
    key = RemoteKey(LocalKey(priv))
    assert as_private_key(key.inner) is priv  # in-memory keys sign natively
    root = _root(key)
    root.verify_directly_issued_by(root)
    csr = make_csr(key, {"O": "Example CSO", "CN": "SN-1"}, PROFILES["charging-station"])
    assert csr.is_signature_valid and csr.public_key() == priv.public_key()
    crl = build_crl(root, key, [CrlEntry(5, AT, x509.ReasonFlags.key_compromise)], at=AT, number=1)
    assert crl.is_signature_valid(priv.public_key())  # type: ignore[arg-type]
    h = hashes.SHA384() if kind == "p384" else hashes.SHA256()
    response = (ocsp.OCSPResponseBuilder()
                .add_response_by_hash(b"\x00" * 20, b"\x01" * 20, 5, hashes.SHA1(), ocsp.OCSPCertStatus.GOOD, AT,
                                      AT + timedelta(hours=1), None, None)
                .responder_id(ocsp.OCSPResponderEncoding.HASH, root).sign(as_private_key(key), h))
    if isinstance(priv, rsa.RSAPrivateKey):
        priv.public_key().verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), h)
    else:
        priv.public_key().verify(response.signature, response.tbs_response_bytes, ec.ECDSA(h))
    expected = (SignatureScheme.RSA_PKCS1V15_SHA256 if kind == "rsa" else
                SignatureScheme.ECDSA_SHA384 if kind == "p384" else SignatureScheme.ECDSA_SHA256)
    assert set(key.calls) == {expected} and len(key.calls) == 4


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_a_signature_the_public_key_refuses_stops_signing(kind: str) -> None:
    priv = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    key = RemoteKey(LocalKey(priv), garbage=True)
    with pytest.raises(KeyError_, match="does not verify"):
        _root(key)
    with pytest.raises(KeyError_, match="does not verify"):
        make_csr(key, {"O": "Example CSO", "CN": "SN-1"})


def test_a_delegated_key_never_gives_itself_away() -> None:
    ec_key = as_private_key(RemoteKey(LocalKey(ec.generate_private_key(ec.SECP256R1()))))
    rsa_key = as_private_key(RemoteKey(LocalKey(rsa.generate_private_key(65537, 2048))))
    assert isinstance(ec_key, DelegatedEcKey) and isinstance(rsa_key, rsa.RSAPrivateKey)
    with pytest.raises(KeyError_, match="stays where it is"):
        ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KeyError_):
        ec_key.private_numbers()
    with pytest.raises(KeyError_):
        ec_key.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(KeyError_):
        rsa_key.decrypt(b"x" * 256, padding.PKCS1v15())
    with pytest.raises(KeyError_):
        rsa_key.private_numbers()
    assert "remote" in repr(ec_key) and "EC secp256r1" in repr(ec_key)
    assert ec_key.key_size == 256 and ec_key.curve.name == "secp256r1" and rsa_key.key_size == 2048


def test_what_a_scheme_key_cannot_do_is_refused() -> None:
    ec_key = as_private_key(RemoteKey(LocalKey(ec.generate_private_key(ec.SECP256R1()))))
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    with pytest.raises(KeyError_, match="deterministically"):
        ec_key.sign(b"data", ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    with pytest.raises(KeyError_, match="no signature scheme"):
        ec_key.sign(b"data", ec.ECDSA(hashes.SHA224()))
    rsa_key = as_private_key(RemoteKey(LocalKey(rsa.generate_private_key(65537, 2048))))
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    max_salt = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
    with pytest.raises(KeyError_, match="no signature scheme"):  # SignatureScheme's PSS has a 32-octet salt
        rsa_key.sign(b"data", max_salt, hashes.SHA256())
    pss32 = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    rsa_key.public_key().verify(rsa_key.sign(b"data", pss32, hashes.SHA256()), b"data", pss32, hashes.SHA256())
    with pytest.raises(KeyError_, match="Ed448"):
        as_private_key(RemoteKey(LocalKey(ed448.Ed448PrivateKey.generate())))
