"""The PKCS#11 key backend against a throw-away SoftHSM2 token (real token, real mechanisms): firmware signing,
and pyca's builders signing certificates, CSRs, CRLs and OCSP responses in the token."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509 import ocsp

from ocppsec.firmware_signing import FirmwareScheme, sign_file, verify_file
from ocppsec.pki.builder import DEFAULT_BACKDATE, CertificateRequest, build_certificate
from ocppsec.pki.csr import PolicyContext, check_csr, make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import BackendError, KeyError_, UsageError, WrongPassphraseError
from ocppsec.pki.hierarchy import HierarchyConfig, make_root
from ocppsec.pki.keys import KeySpec, LocalKey, SignatureScheme, SigningKey, generate_key
from ocppsec.pki.keys.pkcs11 import (
    PIN_ENV,
    Pkcs11Key,
    close_sessions,
    generate_pkcs11_key,
    open_pkcs11_key,
    parse_pkcs11_uri,
)
from ocppsec.pki.names import make_name
from ocppsec.pki.profiles import get_profile

from .conftest import AT, ManufacturerPki, Token

MSG = b"message signed in the token"


# --- URIs (pure) ---------------------------------------------------------------------------------

def test_uri_parsing() -> None:
    u = parse_pkcs11_uri("pkcs11:token=ocppsec;object=fw-signing;id=%01%a0?pin-value=12%2034&module-path=/x.so")
    assert (u.token, u.object, u.id, u.pin_value, u.module_path) == ("ocppsec", "fw-signing", b"\x01\xa0", "12 34", "/x.so")
    assert "12" not in str(u) and "12" not in repr(u)  # the PIN is never shown
    assert str(u) == "pkcs11:token=ocppsec;object=fw-signing;id=%01%a0"
    assert parse_pkcs11_uri("PKCS11:object=My%20Key").object == "My Key"


@pytest.mark.parametrize(("uri", "match"), [
    ("file:/tmp/key.pem", "not a PKCS#11 URI"),
    ("pkcs11:token=a;serial=1234", "not supported"),
    ("pkcs11:token=a;token=b", "twice"),
    ("pkcs11:token", "no value"),
    ("pkcs11:token=a;type=cert", "type must be"),
])
def test_uri_errors(uri: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_pkcs11_uri(uri)


# --- keys in the token ---------------------------------------------------------------------------

def test_ec_keys_sign_with_host_hash_and_der(token: Token) -> None:
    for spec, scheme, h in ((KeySpec.P256, SignatureScheme.ECDSA_SHA256, hashes.SHA256()),
                            (KeySpec.P384, SignatureScheme.ECDSA_SHA384, hashes.SHA384()),
                            (KeySpec.P384, SignatureScheme.ECDSA_SHA256, hashes.SHA256())):
        key = generate_pkcs11_key(token.uri(f"ec-{spec.value}-{scheme.value}"), spec, pin=token.pin)
        assert isinstance(key, SigningKey)
        pub = key.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        sig = key.sign(MSG, scheme)
        assert sig[0] == 0x30  # DER, converted from the token's raw r||s
        pub.verify(sig, MSG, ec.ECDSA(h))
    with pytest.raises(KeyError_, match="cannot sign with rsa-pss-sha256"):
        key.sign(MSG, SignatureScheme.RSA_PSS_SHA256)


def test_rsa_key_pss_and_pkcs1v15(token: Token) -> None:
    key = generate_pkcs11_key(token.uri("rsa-2048"), KeySpec.RSA2048, pin=token.pin)
    pub = key.public_key()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    pub.verify(key.sign(MSG, SignatureScheme.RSA_PSS_SHA256), MSG, pss, hashes.SHA256())  # type: ignore[call-arg,arg-type]
    pub.verify(key.sign(MSG, SignatureScheme.RSA_PKCS1V15_SHA256), MSG, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,arg-type]
    pub.verify(key.sign(MSG, SignatureScheme.RSA_PKCS1V15_SHA384), MSG, padding.PKCS1v15(), hashes.SHA384())  # type: ignore[call-arg,arg-type]
    digest = hashlib.sha256(MSG).digest()
    pub.verify(key.sign_digest(digest, SignatureScheme.RSA_PSS_SHA256), MSG, pss, hashes.SHA256())  # type: ignore[call-arg,arg-type]
    pub.verify(key.sign_digest(digest, SignatureScheme.RSA_PKCS1V15_SHA256), MSG, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,arg-type]
    with pytest.raises(UsageError, match="digest has 32 bytes"):
        key.sign_digest(b"short", SignatureScheme.RSA_PSS_SHA256)


def test_reopen_by_uri_with_pin_from_env_uri_and_file(token: Token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = generate_pkcs11_key(token.uri("reopen"), KeySpec.P256, pin=token.pin)
    monkeypatch.setenv(PIN_ENV, token.pin)
    by_env = open_pkcs11_key(token.uri("reopen"))
    assert by_env.public_key().public_numbers() == made.public_key().public_numbers()  # type: ignore[union-attr]
    assert by_env.label == "pkcs11:token=ocppsec;object=reopen"
    monkeypatch.delenv(PIN_ENV)
    assert open_pkcs11_key(token.uri("reopen") + f"?pin-value={token.pin}").public_key() == made.public_key()
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    assert open_pkcs11_key(token.uri("reopen") + f"?pin-source={pin_file}").public_key() == made.public_key()
    with pytest.raises(UsageError, match="no PIN"):
        open_pkcs11_key(token.uri("reopen"))
    assert "PIN" not in repr(by_env) and token.pin not in repr(by_env)


def test_wrong_pin(token: Token) -> None:
    generate_pkcs11_key(token.uri("pin-test"), KeySpec.P256, pin=token.pin)
    with pytest.raises(WrongPassphraseError, match="wrong PIN for PKCS#11 token 'ocppsec'"):
        open_pkcs11_key(token.uri("pin-test"), pin="0000")  # token already logged in: compared with the login PIN
    close_sessions()
    with pytest.raises(WrongPassphraseError, match="wrong PIN") as info:
        open_pkcs11_key(token.uri("pin-test"), pin="0000")  # fresh login refused by the token
    assert info.value.exit_code == 1
    assert open_pkcs11_key(token.uri("pin-test"), pin=token.pin).label.endswith("object=pin-test")


def test_missing_token_object_and_module(token: Token, tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match=r"no PKCS#11 token labelled 'nope'.*tokens: 'ocppsec'"):
        open_pkcs11_key("pkcs11:token=nope;object=x", pin=token.pin)
    with pytest.raises(KeyError_, match="no key pair with object='missing' in PKCS#11 token 'ocppsec'"):
        open_pkcs11_key(token.uri("missing"), pin=token.pin)
    with pytest.raises(UsageError, match=f"PKCS#11 module {tmp_path}/none.so not found"):
        open_pkcs11_key(token.uri("x"), pin=token.pin, module=str(tmp_path / "none.so"))
    not_a_module = tmp_path / "garbage.so"
    not_a_module.write_bytes(b"not an ELF file")
    with pytest.raises(BackendError, match="cannot load PKCS#11 module"):
        open_pkcs11_key(token.uri("x"), pin=token.pin, module=str(not_a_module))
    with pytest.raises(UsageError, match="names no key"):
        open_pkcs11_key("pkcs11:token=ocppsec", pin=token.pin)


def test_keys_are_never_overwritten(token: Token) -> None:
    generate_pkcs11_key(token.uri("unique"), KeySpec.P256, pin=token.pin)
    with pytest.raises(UsageError, match="already holds a key labelled 'unique'"):
        generate_pkcs11_key(token.uri("unique"), KeySpec.P256, pin=token.pin)
    with pytest.raises(KeyError_, match="cannot create ed448"):
        generate_pkcs11_key(token.uri("ed"), KeySpec.ED448, pin=token.pin)


# --- firmware signing with a token key -----------------------------------------------------------

@pytest.mark.parametrize(("spec", "scheme"), [(KeySpec.P256, FirmwareScheme.ECDSA_SHA256),
                                              (KeySpec.RSA2048, FirmwareScheme.RSA_PSS_SHA256),
                                              (KeySpec.RSA2048, FirmwareScheme.RSA_PKCS1V15_SHA256)])
def test_firmware_signed_in_the_token(token: Token, pki: ManufacturerPki, image: Path, tmp_path: Path,
                                      spec: KeySpec, scheme: FirmwareScheme) -> None:
    key = generate_pkcs11_key(token.uri(f"fw-{scheme.value}"), spec, pin=token.pin)
    req = CertificateRequest(get_profile("firmware-signing"), make_name({"CN": "Token FW", "O": "Example Manufacturer"}),
                             key.public_key(), AT, 365)
    cert = build_certificate(req, issuer_certificate=pki.root.certificate, issuer_key=pki.root.key)
    signature = sign_file(image, key, cert, scheme=scheme)
    report = verify_file(image, signature.b64, cert, [pki.root.certificate], at=AT)
    assert report.scheme is scheme
    # and openssl agrees
    sig = tmp_path / "sig.bin"
    sig.write_bytes(base64.b64decode(signature.b64))
    pub = tmp_path / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    opts = (["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
            if scheme is FirmwareScheme.RSA_PSS_SHA256 else [])
    out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), *opts, "-signature", str(sig), str(image)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# --- a CA whose key lives in the token -----------------------------------------------------------

@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.RSA2048])
def test_token_ca_issues_a_station_certificate_openssl_verifies(token: Token, tmp_path: Path, spec: KeySpec) -> None:
    ca_key = generate_pkcs11_key(token.uri(f"csms-root-{spec.value}"), spec, pin=token.pin)
    assert isinstance(ca_key, Pkcs11Key)
    entity = HierarchyConfig.default(cso_name="Example CSO").plan().get("csms-root")
    ca = make_root(entity, ca_key, AT)
    station_key = LocalKey(generate_key(KeySpec.P256), "station")
    request = CertificateRequest(get_profile("charging-station"), make_name({"O": "Example CSO", "CN": "SN-0001"}),
                                 station_key.public_key(), AT)
    issued = ca.issue(request, station_key)
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    leaf_pem = tmp_path / "station.pem"
    leaf_pem.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    attime = str(int(AT.timestamp()) + 3600)
    out = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(root_pem), str(leaf_pem)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith(": OK")
    # a certificate signed by another key does not verify against the token CA's root
    other = make_root(entity, LocalKey(generate_key(KeySpec.P256)), AT)
    forged = tmp_path / "forged.pem"
    forged.write_bytes(other.issue(request, station_key).certificate.public_bytes(serialization.Encoding.PEM))
    bad = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(root_pem), str(forged)],
                         capture_output=True, text=True)
    assert bad.returncode != 0


# --- pyca's builders signing in the token: issuance pipeline, CSR, CRL, OCSP ---------------------------

def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def test_token_key_is_a_pyca_private_key_that_signs_in_the_token(token: Token) -> None:
    ec_key = generate_pkcs11_key(token.uri("pyca-ec"), KeySpec.P256, pin=token.pin)
    rsa_key = generate_pkcs11_key(token.uri("pyca-rsa"), KeySpec.RSA2048, pin=token.pin)
    assert isinstance(ec_key.private_key, ec.EllipticCurvePrivateKey) and ec_key.private_key is ec_key.private_key
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey)
    assert ec_key.private_key.public_key() == ec_key.public_key() and rsa_key.private_key.key_size == 2048
    with pytest.raises(KeyError_, match="stays where it is"):
        ec_key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    pub = rsa_key.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    for salt in (padding.PSS.MAX_LENGTH, padding.PSS.DIGEST_LENGTH, 20):
        for h in (hashes.SHA256(), hashes.SHA384()):
            pss = padding.PSS(padding.MGF1(h), salt)
            signature = rsa_key.private_key.sign(MSG, pss, h)  # CKM_RSA_PKCS_PSS with the salt pyca writes
            pub.verify(signature, MSG, padding.PSS(padding.MGF1(h), padding.calculate_max_pss_salt_length(pub, h)
                                                   if salt is padding.PSS.MAX_LENGTH else h.digest_size if
                                                   salt is padding.PSS.DIGEST_LENGTH else salt), h)
    signature = ec_key.private_key.sign(hashlib.sha384(MSG).digest(), ec.ECDSA(utils.Prehashed(hashes.SHA384())))
    ec_key.public_key().verify(signature, MSG, ec.ECDSA(hashes.SHA384()))  # type: ignore[call-arg]


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.RSA2048])
def test_csr_signed_in_the_token(token: Token, tmp_path: Path, spec: KeySpec) -> None:
    key = generate_pkcs11_key(token.uri(f"csr-{spec.value}"), spec, pin=token.pin)
    csr = make_csr(key, {"O": "Example CSO", "CN": "SN-TOKEN"}, get_profile("charging-station"))
    assert csr.is_signature_valid and csr.public_key() == key.public_key()
    assert check_csr(csr, get_profile("charging-station"), PolicyContext(cso_name="Example CSO")).ok
    path = tmp_path / "req.pem"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out = _openssl("req", "-in", str(path), "-verify", "-noout")
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr, out.stderr
    if spec is KeySpec.RSA2048:  # RSA-PSS with the longest salt, as pyca writes it into the request
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
        builder = x509.CertificateSigningRequestBuilder().subject_name(make_name({"CN": "SN-PSS"}))
        pss_csr = builder.sign(key.private_key, hashes.SHA256(), rsa_padding=pss)
        assert pss_csr.is_signature_valid
        path.write_bytes(pss_csr.public_bytes(serialization.Encoding.PEM))
        assert _openssl("req", "-in", str(path), "-verify", "-noout").returncode == 0


@pytest.fixture(scope="module")
def token_pki(token: Token, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiDirectory]:
    """A PKI directory whose CSMS root CA key lives in the token."""
    generate_pkcs11_key(token.uri("dir-csms-root"), KeySpec.P256, pin=token.pin)
    saved = os.environ.get(PIN_ENV)
    os.environ[PIN_ENV] = token.pin
    try:
        pki = PkiDirectory.init(tmp_path_factory.mktemp("token-pki") / "pki", HierarchyConfig.default(cso_name="Example CSO"),
                                passphrase=None, at=AT, ca_keys={"csms-root": token.uri("dir-csms-root")})
        yield pki
        pki.close()
    finally:
        if saved is None:
            os.environ.pop(PIN_ENV, None)
        else:
            os.environ[PIN_ENV] = saved


def _pem_file(path: Path, *items: x509.Certificate | x509.CertificateRevocationList) -> Path:
    path.write_bytes(b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items))
    return path


def test_token_ca_issues_through_the_pipeline(token_pki: PkiDirectory, tmp_path: Path) -> None:
    ca = token_pki.ca("csms-root")
    assert isinstance(ca.key, Pkcs11Key) and ca.certificate.public_key() == ca.key.public_key()
    profile = get_profile("charging-station")
    csrs = [make_csr(generate_key(KeySpec.P256), {"O": "Example CSO", "CN": f"SN-T{n}"}, profile) for n in range(3)]
    results = token_pki.issue_many(csrs, ca="csms-root", at=AT, station="CS-T")
    root = _pem_file(tmp_path / "root.pem", ca.certificate)
    attime = str(int(AT.timestamp()) + 3600)
    for res in results:
        cert = res.issued.certificate
        cert.verify_directly_issued_by(ca.certificate)  # the token's public key, as the root carries it
        assert token_pki.ledger.find_serial(res.record.serial, "csms-root")[0].station == "CS-T"
        request = CertificateRequest(profile, cert.subject, cert.public_key(), AT - DEFAULT_BACKDATE, None,
                                     cert.serial_number, (),
                                     "http://ocsp.example.com/csms-root")
        plain = build_certificate(request, issuer_certificate=ca.certificate, issuer_key=ca.key)
        assert cert.tbs_certificate_bytes == plain.tbs_certificate_bytes
        out = _openssl("verify", "-attime", attime, "-CAfile", str(root), str(_pem_file(tmp_path / "leaf.pem", cert)))
        assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out.stdout + out.stderr


def test_crl_and_ocsp_signed_in_the_token(token_pki: PkiDirectory, tmp_path: Path) -> None:
    from ocppsec.pki.revocation.authorities import load_authorities
    from ocppsec.pki.revocation.client import build_request, check_response
    from ocppsec.pki.revocation.crl import build_crl, crl_entries
    from ocppsec.pki.revocation.ocsp import CertId, CertStatus, OcspResponder

    ca = token_pki.ca("csms-root")
    csr = make_csr(generate_key(KeySpec.P256), {"O": "Example CSO", "CN": "SN-REV"}, get_profile("charging-station"))
    leaf = token_pki.issue_from_csr(csr, ca="csms-root", at=AT).issued.certificate
    token_pki.ledger.revoke(format(leaf.serial_number, "x"), "csms-root", AT, "keyCompromise")
    crl = build_crl(ca.certificate, ca.key, crl_entries(token_pki.ledger.revoked("csms-root")), at=AT, number=1)
    assert crl.is_signature_valid(ca.key.public_key())  # type: ignore[arg-type]
    root = _pem_file(tmp_path / "root.pem", ca.certificate)
    out = _openssl("crl", "-in", str(_pem_file(tmp_path / "root.crl", crl)), "-CAfile", str(root), "-verify", "-noout")
    assert "verify OK" in out.stdout + out.stderr, out.stderr
    # OCSP answered by the CA itself, signed in the token
    responder = OcspResponder(load_authorities(token_pki, ["csms-root"], at=AT, delegated=False), token_pki.ledger)
    cert_id = CertId.for_certificate(leaf, ca.certificate)
    request, nonce = build_request(cert_id)
    answer = responder.respond(request, at=AT)
    result = check_response(answer, cert_id, at=AT, issuer=ca.certificate, nonce=nonce)
    assert result.status is CertStatus.REVOKED and result.signature_checked
    basic = ocsp.load_der_ocsp_response(answer)
    ca.key.public_key().verify(basic.signature, basic.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    assert basic.responder_key_hash is not None
    # and the delegated responder's certificate is issued by the token CA
    delegated = load_authorities(token_pki, ["csms-root"], at=AT, delegated=True)[0]
    delegated.signer_certificate.verify_directly_issued_by(ca.certificate)


def test_token_root_is_not_rolled_over_into_a_key_file(token_pki: PkiDirectory) -> None:
    before = {r.fingerprint for r in token_pki.ledger.all()}
    with pytest.raises(UsageError, match="PKCS#11 token"):
        token_pki.rollover("csms-root", at=AT + timedelta(days=1))
    assert {r.fingerprint for r in token_pki.ledger.all()} == before
    assert not list((token_pki.path / "keys").glob("csms-root*"))
