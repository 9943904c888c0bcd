"""Every Wycheproof signature vector through the firmware verify path.

The vectors are hashed with :func:`hash_chunks` and checked with :func:`verify_image_signature` (the
function step 2 of firmware verification calls), with the parameters each test group declares.
All ``valid`` vectors must be accepted and all ``invalid`` ones rejected. Ed25519 (PureEdDSA) cannot
be verified from a one-pass digest of the image, so the firmware path refuses it outright: every
Ed25519 vector is rejected with an explicit "not usable for firmware" error.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ocppsec.firmware_signing import (
    FirmwareSignatureError,
    SignatureAlgorithm,
    hash_chunks,
    verify_image_signature,
)

FILES = [
    "ecdsa_secp256r1_sha256_test.json",
    "ecdsa_secp256r1_sha256_p1363_test.json",
    "ecdsa_secp384r1_sha256_test.json",
    "ecdsa_secp384r1_sha384_test.json",
    "ecdsa_secp384r1_sha384_p1363_test.json",
    "rsa_pss_2048_sha256_mgf1_0_test.json",
    "rsa_pss_2048_sha256_mgf1_32_test.json",
    "rsa_pss_2048_sha384_mgf1_48_test.json",
    "rsa_pss_3072_sha256_mgf1_32_test.json",
    "rsa_pss_4096_sha384_mgf1_48_test.json",
    "rsa_pss_misc_test.json",
    "rsa_signature_2048_sha256_test.json",
    "rsa_signature_2048_sha384_test.json",
    "rsa_signature_3072_sha256_test.json",
    "rsa_signature_3072_sha384_test.json",
    "rsa_signature_4096_sha256_test.json",
    "rsa_signature_4096_sha384_test.json",
]


def _hash(name: str) -> str:
    return name.lower().replace("-", "")


def _algorithm(kind: str, group: dict[str, Any]) -> SignatureAlgorithm:
    h = _hash(group["sha"])
    if kind == "EcdsaVerify":
        return SignatureAlgorithm("ecdsa", h, "der")
    if kind == "EcdsaP1363Verify":
        return SignatureAlgorithm("ecdsa", h, "p1363")
    if kind == "RsassaPkcs1Verify":
        return SignatureAlgorithm("rsa-pkcs1v15", h)
    assert kind == "RsassaPssVerify"
    assert group["mgf"] == "MGF1"
    return SignatureAlgorithm("rsa-pss", h, pss_salt_length=group["sLen"], pss_mgf_hash=_hash(group["mgfSha"]))


def _accepts(public_key: Any, algorithm: SignatureAlgorithm | None, msg: bytes, sig: bytes) -> bool:
    digest = hash_chunks([msg], algorithm.hash if algorithm else "sha256")
    try:
        verify_image_signature(public_key, digest, sig, algorithm)
    except FirmwareSignatureError:
        return False
    return True


def test_every_file_is_covered(vectors: Path) -> None:
    present = {p.name for p in (vectors / "wycheproof").glob("*.json")}
    assert present == {*FILES, "ed25519_test.json"}


@pytest.mark.parametrize("name", FILES)
def test_wycheproof(vectors: Path, name: str) -> None:
    data = json.loads((vectors / "wycheproof" / name).read_text())
    counts: Counter[str] = Counter()
    wrong: list[str] = []
    for group in data["testGroups"]:
        public_key = load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        algorithm = _algorithm(group["type"], group)
        for case in group["tests"]:
            accepted = _accepts(public_key, algorithm, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
            counts[f"{case['result']}:{'accepted' if accepted else 'rejected'}"] += 1
            if (case["result"] == "valid" and not accepted) or (case["result"] == "invalid" and accepted):
                wrong.append(f"tcId {case['tcId']} ({case['result']}, {case['comment']}, flags {case['flags']})")
    assert not wrong, f"{name}: {len(wrong)} wrong verdicts: " + "; ".join(wrong[:10])
    assert counts["valid:accepted"] > 0
    assert sum(counts.values()) == data["numberOfTests"]


def test_firmware_rsa_auto_detection_on_vectors(vectors: Path) -> None:
    """Without a declared scheme, RSA-2048/SHA-256 vectors verify through the PSS-then-PKCS#1 v1.5 path."""
    for name, held in (("rsa_signature_2048_sha256_test.json", "rsa-pkcs1v15-sha256"),
                       ("rsa_pss_2048_sha256_mgf1_32_test.json", "rsa-pss-sha256")):
        data = json.loads((vectors / "wycheproof" / name).read_text())
        for group in data["testGroups"]:
            public_key = load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
            for case in group["tests"]:
                digest = hash_chunks([bytes.fromhex(case["msg"])])
                try:
                    used = verify_image_signature(public_key, digest, bytes.fromhex(case["sig"]))
                except FirmwareSignatureError:
                    assert case["result"] != "valid", case["tcId"]
                    continue
                if "WrongPrimitive" in case["flags"]:
                    # The other RSA padding (PSS in a PKCS#1 v1.5 file and vice versa): invalid under
                    # the declared scheme, accepted by the undeclared path, which names the other one.
                    assert str(used) in {"rsa-pss-sha256", "rsa-pkcs1v15-sha256"} - {held}, case["tcId"]
                    continue
                assert case["result"] != "invalid", case["tcId"]
                assert str(used) == held


def test_ed25519_is_refused_by_the_firmware_path(vectors: Path) -> None:
    data = json.loads((vectors / "wycheproof" / "ed25519_test.json").read_text())
    n = 0
    for group in data["testGroups"]:
        public_key = load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        for case in group["tests"]:
            digest = hash_chunks([bytes.fromhex(case["msg"])])
            with pytest.raises(FirmwareSignatureError, match="not usable for firmware"):
                verify_image_signature(public_key, digest, bytes.fromhex(case["sig"]))
            n += 1
    assert n == data["numberOfTests"]
