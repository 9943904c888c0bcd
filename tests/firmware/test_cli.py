"""``ocppsec firmware sign|verify`` end to end, in subprocesses: exit codes, one-line errors, no traceback."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocppsec.pki.keys import KeySpec
from ocppsec.pki.keys.files import write_key_file
from ocppsec.pki.keys.pkcs11 import generate_pkcs11_key

from .conftest import AT, ManufacturerPki, Signer, Token
from .test_wire import _validate

AT_TEXT = "2026-11-23T12:00:00Z"
PASS = "correct horse battery staple"


@dataclass
class Run:
    code: int
    out: str
    err: str


def ocppsec(*args: str, env: dict[str, str] | None = None) -> Run:
    base = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}
    p = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "firmware", *args], capture_output=True,
                       text=True, env={**base, **(env or {})}, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return Run(p.returncode, p.stdout, p.stderr)


def one_line_error(run: Run, *needles: str) -> None:
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert lines, run
    assert lines[0].startswith("error: "), run.err
    assert all(not line.startswith("error") for line in lines[1:]), run.err
    for needle in needles:
        assert needle in lines[0], (needle, run.err)


@pytest.fixture
def files(tmp_path: Path, pki: ManufacturerPki) -> dict[str, Path]:
    def pem(signer: Signer, name: str) -> Path:
        path = tmp_path / name
        path.write_text(signer.pem)
        return path

    key = tmp_path / "fw.key"
    write_key_file(key, pki.ecdsa.key.private_key, PASS.encode())
    rsa_key = tmp_path / "rsa.key"
    write_key_file(rsa_key, pki.rsa.key.private_key, None)
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(150_000))
    return {"key": key, "rsa_key": rsa_key, "image": image, "cert": pem(pki.ecdsa, "fw.pem"),
            "rsa_cert": pem(pki.rsa, "rsa.pem"), "root": pem(pki.root, "root.pem"),
            "other_root": pem(pki.other_root, "other-root.pem"), "expired": pem(pki.expired, "expired.pem"),
            "via_sub": pem(pki.via_intermediate, "via-sub.pem"), "sub": pem(pki.intermediate, "sub.pem"),
            "foreign": pem(pki.foreign, "foreign.pem")}


def verify(files: dict[str, Path], signature: str, *extra: str, cert: str = "cert",
           image: str = "image") -> Run:
    return ocppsec("verify", str(files[image]), "--signature", signature, "--cert", str(files[cert]),
                   "--root", str(files["root"]), "--at", AT_TEXT, *extra)


def test_sign_and_verify(files: dict[str, Path], tmp_path: Path) -> None:
    sig_file = tmp_path / "fw.sig"
    run = ocppsec("sign", str(files["image"]), "--key", str(files["key"]), "--cert", str(files["cert"]),
                  "--out", str(sig_file))
    assert run.code == 0, run.err
    b64 = run.out.strip()
    assert sig_file.read_text().strip() == b64
    base64.b64decode(b64, validate=True)
    assert "ecdsa-sha256" in run.err
    assert "\r" not in run.err and "%" not in run.err  # no progress bar when not on a terminal
    ok = ocppsec("verify", str(files["image"]), "--signature-file", str(sig_file), "--cert", str(files["cert"]),
                 "--root", str(files["other_root"]), "--root", str(files["root"]), "--at", AT_TEXT)
    assert ok.code == 0, ok.err
    assert "SignatureVerified" in ok.out
    assert [line.split()[:3] for line in ok.out.splitlines()[:3]] == [["step", "1", "ok"], ["step", "2", "ok"],
                                                                      ["step", "3", "ok"]]
    js = ocppsec("verify", str(files["image"]), "--signature", b64, "--cert", str(files["cert"]),
                 "--root", str(files["root"]), "--at", AT_TEXT, "--json", "--ocpp", "1.6")
    assert js.code == 0
    report = json.loads(js.out)
    assert report["status"] == "SignatureVerified"
    assert report["ocpp"]["firmwareStatus"] == "SignatureVerified"
    assert report["ocpp"]["updateFirmwareResponseStatus"] == "Accepted"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_sign_json_prints_the_firmware_object(files: dict[str, Path], version: str) -> None:
    run = ocppsec("sign", str(files["image"]), "--key", str(files["key"]), "--cert", str(files["cert"]),
                  "--location", "https://dl.example.com/fw.bin", "--ocpp", version, "--json",
                  "--retrieve-at", AT_TEXT, "--install-at", "2026-11-24T03:00:00Z")
    assert run.code == 0, run.err
    obj = json.loads(run.out)
    assert obj["retrieveDateTime"] == "2026-11-23T12:00:00.000Z"  # AT_TEXT in the one OCPP format (3 digits)
    assert obj["installDateTime"] == "2026-11-24T03:00:00.000Z"
    schema = {"1.6": ("v16", "SignedUpdateFirmware"), "2.0.1": ("v201", "UpdateFirmwareRequest"),
              "2.1": ("v21", "UpdateFirmwareRequest")}[version]
    _validate(*schema, {"requestId": 1, "firmware": obj})
    assert verify(files, obj["signature"]).code == 0


def test_rsa_schemes(files: dict[str, Path]) -> None:
    for scheme in ("rsa-pss-sha256", "rsa-pkcs1v15-sha256"):
        run = ocppsec("sign", str(files["image"]), "--key", str(files["rsa_key"]), "--cert", str(files["rsa_cert"]),
                      "--scheme", scheme)
        assert run.code == 0, run.err
        js = verify(files, run.out.strip(), "--json", cert="rsa_cert")
        assert js.code == 0
        assert json.loads(js.out)["scheme"] == scheme
    run = ocppsec("sign", str(files["image"]), "--key", str(files["rsa_key"]), "--cert", str(files["rsa_cert"]))
    assert run.code == 2
    one_line_error(run, "explicit firmware signature scheme")


def test_sign_bad_input(files: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    common = ["--key", str(files["key"]), "--cert", str(files["cert"])]
    run = ocppsec("sign", str(empty), *common)
    assert run.code == 1
    one_line_error(run, "empty")
    run = ocppsec("sign", str(tmp_path / "missing.bin"), *common)
    assert run.code == 3
    one_line_error(run, "does not exist")
    run = ocppsec("sign", str(files["image"]), *common, "--json")
    assert run.code == 2
    one_line_error(run, "--location")
    run = ocppsec("sign", str(files["image"]), "--key", str(files["key"]), "--cert", str(files["rsa_cert"]))
    assert run.code == 2
    one_line_error(run, "does not belong to the signing certificate")
    run = ocppsec("sign", str(files["image"]), *common, env={"OCPPSEC_PASSPHRASE": "wrong"})
    assert run.code == 1
    one_line_error(run, "wrong passphrase")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    run = ocppsec("sign", str(files["image"]), "--key", str(files["key"]), "--cert", str(garbage))
    assert run.code == 1
    one_line_error(run, "not a valid X.509 certificate")


def _signature(files: dict[str, Path], image: Path | None = None, key: str = "key", cert: str = "cert") -> str:
    run = ocppsec("sign", str(image or files["image"]), "--key", str(files[key]), "--cert", str(files[cert]))
    assert run.code == 0, run.err
    return run.out.strip()


def test_verify_bad_input(files: dict[str, Path], tmp_path: Path, pki: ManufacturerPki) -> None:
    good = _signature(files)
    invalid_sig = ("InvalidSignature", "InvalidFirmwareSignature")
    invalid_cert = ("InvalidCertificate", "InvalidFirmwareSigningCertificate")

    run = verify(files, "***not base64***")
    assert run.code == 1
    one_line_error(run, *invalid_sig, "not valid base64")

    raw = base64.b64decode(good)
    run = verify(files, base64.b64encode(raw + raw).decode())
    assert run.code == 1
    one_line_error(run, *invalid_sig, "wrong length")

    other = tmp_path / "other.bin"
    other.write_bytes(b"another firmware image")
    run = verify(files, _signature(files, other))
    assert run.code == 1
    one_line_error(run, *invalid_sig, "does not match the image")

    data = bytearray(files["image"].read_bytes())
    data[4242] ^= 0x80
    flipped = tmp_path / "flipped.bin"
    flipped.write_bytes(bytes(data))
    files["flipped"] = flipped
    run = verify(files, good, image="flipped")
    assert run.code == 1
    one_line_error(run, *invalid_sig)

    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    files["empty"] = empty
    run = verify(files, good, image="empty")
    assert run.code == 1
    one_line_error(run, *invalid_sig, "empty")

    run = verify(files, good, cert="foreign")
    assert run.code == 1
    one_line_error(run, *invalid_cert, "not issued directly")

    run = verify(files, good, cert="expired")
    assert run.code == 1
    one_line_error(run, *invalid_cert, "has expired")

    run = verify(files, good, cert="root")
    assert run.code == 1
    one_line_error(run, *invalid_cert, "CA certificate")

    run = verify(files, good, cert="via_sub")
    assert run.code == 1
    one_line_error(run, *invalid_cert, "without intermediates")

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM")
    files["garbage"] = garbage
    run = verify(files, good, cert="garbage")
    assert run.code == 1
    one_line_error(run, *invalid_cert, "no certificate found")

    run = ocppsec("verify", str(files["image"]), "--signature", good, "--cert", str(files["cert"]),
                  "--root", str(garbage))
    assert run.code == 1
    one_line_error(run, "root certificate")

    run = ocppsec("verify", str(tmp_path / "missing.bin"), "--signature", good, "--cert", str(files["cert"]),
                  "--root", str(files["root"]))
    assert run.code == 3
    one_line_error(run, "does not exist")

    run = ocppsec("verify", str(files["image"]), "--cert", str(files["cert"]), "--root", str(files["root"]))
    assert run.code == 2
    one_line_error(run, "exactly one of --signature")

    run = verify(files, good, "--ocpp", "1.6", cert="root")
    one_line_error(run, "not critical in OCPP 1.6")
    js = verify(files, good, "--json", cert="expired")
    assert js.code == 1
    assert json.loads(js.out)["ocpp"]["updateFirmwareResponseStatus"] == "InvalidCertificate"


def test_pkcs11_key_uri(files: dict[str, Path], token: Token, pki: ManufacturerPki, tmp_path: Path) -> None:
    from ocppsec.pki.builder import CertificateRequest, build_certificate
    from ocppsec.pki.names import make_name
    from ocppsec.pki.profiles import get_profile

    key = generate_pkcs11_key(token.uri("cli-fw"), KeySpec.P256, pin=token.pin)
    req = CertificateRequest(get_profile("firmware-signing"), make_name({"CN": "CLI FW", "O": "Example Manufacturer"}),
                             key.public_key(), AT, 365)
    cert = tmp_path / "token-fw.pem"
    cert.write_bytes(build_certificate(req, issuer_certificate=pki.root.certificate, issuer_key=pki.root.key)
                     .public_bytes(serialization.Encoding.PEM))
    files["token_cert"] = cert
    run = ocppsec("sign", str(files["image"]), "--key", token.uri("cli-fw"), "--cert", str(cert), env=token.env())
    assert run.code == 0, run.err
    assert verify(files, run.out.strip(), cert="token_cert").code == 0

    run = ocppsec("sign", str(files["image"]), "--key", token.uri("cli-fw"), "--cert", str(cert),
                  env={**token.env(), "OCPPSEC_PKCS11_PIN": "0000"})
    assert run.code == 1
    one_line_error(run, "wrong PIN")
    run = ocppsec("sign", str(files["image"]), "--key", token.uri("no-such-key"), "--cert", str(cert), env=token.env())
    assert run.code == 1
    one_line_error(run, "no key pair with object='no-such-key'")
    run = ocppsec("sign", str(files["image"]), "--key", "pkcs11:token=absent;object=x", "--cert", str(cert),
                  env=token.env())
    assert run.code == 1
    one_line_error(run, "no PKCS#11 token labelled 'absent'")
    run = ocppsec("sign", str(files["image"]), "--key", token.uri("cli-fw"), "--cert", str(cert),
                  env={**token.env(), "OCPPSEC_PKCS11_MODULE": str(tmp_path / "missing.so")})
    assert run.code == 2
    one_line_error(run, "not found")


def test_progress_bar_only_on_a_terminal(files: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    args = [sys.executable, "-m", "ocppsec.cli.main", "firmware", "sign", str(big), "--key", str(files["key"]),
            "--cert", str(files["cert"])]
    env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}

    def on_tty(extra: list[str]) -> tuple[int, str, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen([*args, *extra], stdout=subprocess.PIPE, stderr=slave, env=env)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read().decode() if proc.stdout else ""
        code = proc.wait(timeout=60)
        os.close(master)
        return code, out, b"".join(chunks).decode(errors="replace")

    code, out, tty = on_tty([])
    assert code == 0
    assert "signing" in tty
    assert "100%" in tty
    base64.b64decode(out.strip(), validate=True)
    code, out, tty = on_tty(["--json", "--location", "https://dl.example.com/big.bin"])
    assert code == 0
    assert "%" not in tty
    json.loads(out)
    plain = ocppsec("sign", str(big), "--key", str(files["key"]), "--cert", str(files["cert"]))
    assert plain.code == 0
    assert "%" not in plain.err
