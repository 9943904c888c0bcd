"""Every command that reads a file, given every kind of bad file: the documented exit class and one line.

Exit classes: 1 for content (empty, truncated, garbage, not UTF-8, too large, the wrong kind of object),
2 for a configuration file whose content is wrong, 3 for the file system (missing, a directory, a FIFO,
permission denied). stderr is ``error: ...`` plus at most a ``hint:`` line, never a traceback or
"internal error". Each case runs ``main()`` in a forked child (tests/cli/_harness.py); the permission
case runs as ``nobody`` (root reads anything), on copies in a directory everyone may enter.

:data:`SLOTS` lists one row per (command, file option); ``test_every_file_option_is_covered`` fails when
a command gains a file option that is not listed here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.cli._app import cli
from ocppsec.firmware_signing.files import sign_file
from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.hierarchy import HierarchyConfig, default_config_text
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.keys.files import key_to_pem, load_key_file
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES
from ocppsec.pki.revocation.crl import build_crl
from tests.cli._harness import assert_one_line_error, invoke

PASS = "bad files passphrase"
ENV = {"OCPPSEC_PASSPHRASE": PASS}
NOW = datetime.now(UTC)

KINDS = ("empty", "truncated", "garbage", "big", "non_utf8", "directory", "missing", "wrong_kind", "permission", "fifo")
FILE_SYSTEM = ("directory", "missing", "permission", "fifo")  # exit 3 everywhere
BIG = 100 * 1000 * 1000  # a sparse 100 MB file: refused by its size, before it is read


@dataclass
class Files:
    """Valid inputs in a directory everyone may enter (the permission case runs as nobody)."""

    root: Path
    good: dict[str, Path] = field(default_factory=dict)

    def bad(self, kind: str, content: str, name: str) -> Path:
        """A bad file of ``kind`` standing where a ``content`` file is expected."""
        path = self.root / "bad" / f"{name}-{kind}"
        path.parent.mkdir(exist_ok=True)
        if path.exists() or path.is_symlink():
            return path
        valid = self.good[content].read_bytes()
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "truncated":
            path.write_bytes(valid[: len(valid) // 2])
        elif kind == "garbage":
            path.write_bytes(bytes(range(256)) * 4 + os.urandom(512))
        elif kind == "big":
            with path.open("wb") as fh:
                fh.truncate(BIG)
        elif kind == "non_utf8":
            label = {"key": "ENCRYPTED PRIVATE KEY", "csr": "CERTIFICATE REQUEST", "crl": "X509 CRL"}.get(content,
                                                                                                         "CERTIFICATE")
            path.write_bytes(f"-----BEGIN {label}-----\n".encode() + b"MII\xe9\xff\xfe\xc3\x28\n"
                             + f"-----END {label}-----\n".encode() if content in PEMISH else b"CS-\xff\xfe\xc3\x28\n" * 8)
        elif kind == "directory":
            path.mkdir()
        elif kind == "missing":
            return path
        elif kind == "wrong_kind":
            path.write_bytes(self.good[WRONG_KIND[content]].read_bytes())
        elif kind == "permission":
            path.write_bytes(valid)
            os.chmod(path, 0o600)  # root's, and the command runs as nobody
        elif kind == "fifo":
            os.mkfifo(path)
        return path


PEMISH = {"cert", "certs", "csr", "key", "crl", "server_cert", "server_key", "fw_cert", "fw_key"}
# What "the wrong kind of object" is for each content: a key where a certificate is expected, and so on.
WRONG_KIND = {"cert": "key", "certs": "key", "csr": "cert", "key": "cert", "crl": "cert", "server_cert": "server_key",
              "server_key": "server_cert", "fw_cert": "fw_key", "fw_key": "fw_cert", "toml": "cert",
              "registry": "cert", "image": "cert", "signature": "cert",
              "gateway_toml": "cert"}


def expected(content: str, kind: str) -> int:
    """The exit code for a bad ``kind`` of file where ``content`` is expected."""
    if kind in FILE_SYSTEM:
        return 3
    if content in ("toml", "crl_config", "gateway_toml"):
        return 1 if kind == "big" else 2  # a configuration that does not parse is a usage error
    if content == "image_sign":
        return 1 if kind == "empty" else 0  # any bytes are an image; an empty one is refused
    return 1


Argv = Callable[[Files, Path], list[str]]


@dataclass(frozen=True)
class Slot:
    name: str  # "command --option"
    content: str  # what the option expects (a key of Files.good, or image_sign)
    argv: Argv
    json: bool = False  # the command has --json

    @property
    def good_key(self) -> str:
        return {"image_sign": "image", "crl_config": "crl"}.get(self.content, self.content)


def _gateway(f: Files, cert: Path, key: Path, trust: Path) -> list[str]:
    return ["gateway", "--listen", "127.0.0.1:0", "--profile", "2,3", "--upstream", "ws://127.0.0.1:9/ocpp",
            "--server-cert", str(cert), "--server-key", str(key), "--trust", str(trust), "--cso-name", "ACME CSO",
            "--stations", str(f.root / "scratch" / "stations.db")]


def _upstream(f: Files, ca: Path, cert: Path, key: Path) -> list[str]:
    """The gateway with a wss:// upstream: its CA roots and its client certificate and key."""
    return ["gateway", "--listen", "127.0.0.1:0", "--profile", "1", "--upstream", "wss://127.0.0.1:9/ocpp",
            "--upstream-ca", str(ca), "--upstream-cert", str(cert), "--upstream-key", str(key),
            "--stations", str(f.root / "scratch" / "stations.db")]


def _receive(f: Files, cert: Path, key: Path) -> list[str]:
    return ["events", "receive", "--listen", "127.0.0.1:0", "--dir", str(f.root / "scratch" / "uploads"),
            "--store", str(f.root / "scratch" / "events.db"), "--server-cert", str(cert), "--server-key", str(key)]


SLOTS: list[Slot] = [
    Slot("pki init --config", "toml", lambda f, p: ["pki", "init", str(f.root / "scratch" / "new-pki"), "--config", str(p)],
         json=True),
    Slot("pki issue --csr", "csr", lambda f, p: ["pki", "issue", str(f.good["pki"]), "--ca", "csms-root", "--csr", str(p)],
         json=True),
    Slot("pki issue --serial-registry", "registry",
         lambda f, p: ["pki", "issue", str(f.good["pki"]), "--ca", "csms-root", "--csr", str(f.good["csr"]),
                       "--serial-registry", str(p)], json=True),
    Slot("pki verify CHAIN", "certs", lambda f, p: ["pki", "verify", str(p), "--trust", str(f.good["root"])], json=True),
    Slot("pki verify --trust", "cert", lambda f, p: ["pki", "verify", str(f.good["certs"]), "--trust", str(p)], json=True),
    Slot("pki verify --crl", "crl", lambda f, p: ["pki", "verify", str(f.good["certs"]), "--trust", str(f.good["root"]),
                                                  "--crl", str(p)], json=True),
    Slot("pki lint CERT", "cert", lambda f, p: ["pki", "lint", str(p)], json=True),
    Slot("pki hashdata CERT", "cert", lambda f, p: ["pki", "hashdata", str(p), "--issuer", str(f.good["root"])], json=True),
    Slot("pki hashdata --issuer", "cert", lambda f, p: ["pki", "hashdata", str(f.good["certs"]), "--issuer", str(p)],
         json=True),
    Slot("pki revoke --cert", "cert", lambda f, p: ["pki", "revoke", str(f.good["pki"]), "--cert", str(p), "--reason",
                                                    "superseded"], json=True),
    Slot("firmware sign IMAGE", "image_sign",
         lambda f, p: ["firmware", "sign", str(p), "--key", str(f.good["fw_key"]), "--cert", str(f.good["fw_cert"])]),
    Slot("firmware sign --key", "fw_key",
         lambda f, p: ["firmware", "sign", str(f.good["image"]), "--key", str(p), "--cert", str(f.good["fw_cert"])]),
    Slot("firmware sign --cert", "fw_cert",
         lambda f, p: ["firmware", "sign", str(f.good["image"]), "--key", str(f.good["fw_key"]), "--cert", str(p)]),
    Slot("firmware verify IMAGE", "image",
         lambda f, p: ["firmware", "verify", str(p), "--signature-file", str(f.good["signature"]), "--cert",
                       str(f.good["fw_cert"]), "--root", str(f.good["mf_root"])], json=True),
    Slot("firmware verify --signature-file", "signature",
         lambda f, p: ["firmware", "verify", str(f.good["image"]), "--signature-file", str(p), "--cert",
                       str(f.good["fw_cert"]), "--root", str(f.good["mf_root"])], json=True),
    Slot("firmware verify --cert", "fw_cert",
         lambda f, p: ["firmware", "verify", str(f.good["image"]), "--signature-file", str(f.good["signature"]),
                       "--cert", str(p), "--root", str(f.good["mf_root"])], json=True),
    Slot("firmware verify --root", "cert",
         lambda f, p: ["firmware", "verify", str(f.good["image"]), "--signature-file", str(f.good["signature"]),
                       "--cert", str(f.good["fw_cert"]), "--root", str(p)], json=True),
    Slot("firmware verify --crl", "crl",
         lambda f, p: ["firmware", "verify", str(f.good["image"]), "--signature-file", str(f.good["signature"]),
                       "--cert", str(f.good["fw_cert"]), "--root", str(f.good["mf_root"]), "--crl", str(p)], json=True),
    Slot("gateway --server-cert", "server_cert", lambda f, p: _gateway(f, p, f.good["server_key"], f.good["root"])),
    Slot("gateway --server-key", "server_key", lambda f, p: _gateway(f, f.good["server_cert"], p, f.good["root"])),
    Slot("gateway --trust", "cert", lambda f, p: _gateway(f, f.good["server_cert"], f.good["server_key"], p)),
    Slot("gateway --crl", "crl_config", lambda f, p: [*_gateway(f, f.good["server_cert"], f.good["server_key"],
                                                              f.good["root"]), "--crl", str(p)]),
    Slot("gateway --upstream-ca", "cert", lambda f, p: _upstream(f, p, f.good["server_cert"], f.good["server_key"])),
    Slot("gateway --upstream-cert", "server_cert", lambda f, p: _upstream(f, f.good["root"], p, f.good["server_key"])),
    Slot("gateway --upstream-key", "server_key", lambda f, p: _upstream(f, f.good["root"], f.good["server_cert"], p)),
    Slot("gateway --config", "gateway_toml", lambda f, p: ["gateway", "--config", str(p)]),
    Slot("events receive --server-cert", "server_cert", lambda f, p: _receive(f, p, f.good["server_key"])),
    Slot("events receive --server-key", "server_key", lambda f, p: _receive(f, f.good["server_cert"], p)),
]

# File options that are not input files of the kinds above: directories, outputs, stores (tested apart).
NOT_INPUT_FILES = {
    ("demo", "--dir"), ("events export", "--output"), ("events receive", "--dir"), ("firmware sign", "--out"),
    ("ocsp serve", "directory"), ("pki crl", "directory"), ("pki crl", "--out"), ("pki csr", "--key-out"),
    ("pki csr", "--out"), ("pki expiring", "directory"), ("pki export", "directory"), ("pki export", "--pkcs12"),
    ("pki init", "directory"), ("pki issue", "directory"), ("pki issue", "--out"), ("pki list", "directory"),
    ("pki revoke", "directory"), ("pki cross-sign", "directory"), ("pki cross-sign", "--out"), ("pki renew", "directory"),
    ("pki retire", "directory"), ("pki rollover", "directory"), ("pki issue", "--out-dir"),
    # a folder of CSRs or a CSV (read through pki._io, each CSR too); its bad inputs are the batch's own tests
    ("pki issue", "--batch"),
}


# Options that name files without click.Path (they also accept URLs, or several values).
FILE_PARAMETERS = {"server_certs", "server_keys", "trust", "crls", "key_spec", "config", "upstream_ca", "upstream_cert",
                   "upstream_key"}


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    with tempfile.TemporaryDirectory(prefix="ocppsec-badfiles-") as name:
        root = Path(name)
        os.chmod(root, 0o755)
        f = Files(root)
        (root / "scratch").mkdir()
        os.chmod(root / "scratch", 0o777)
        config = HierarchyConfig.default(cso_name="ACME CSO", csms_fqdn="csms.acme.test")
        pki = PkiDirectory.init(root / "pki", config, passphrase=PASS.encode(), at=NOW - timedelta(days=1))
        try:
            def write(name: str, data: bytes) -> Path:
                path = root / name
                path.write_bytes(data)
                f.good[name.split(".")[0]] = path
                return path

            station_key = generate_key(KeySpec.P256)
            csr = make_csr(station_key, {"O": "ACME CSO", "CN": "CS-1"}, PROFILES["charging-station"])
            write("csr.pem", csr.public_bytes(Encoding.PEM))
            write("key.pem", key_to_pem(station_key, PASS.encode()))
            issued = pki.issue_from_csr(csr, ca="csms-root", at=NOW, ctx=pki.policy_context(expected_cn="CS-1"))
            write("certs.pem", issued.chain_pem().encode())
            write("cert.pem", certificates_to_pem(issued.issued.chain[:1]).encode())
            write("root.pem", certificates_to_pem([pki.ca_certificate("csms-root")]).encode())
            write("mf_root.pem", certificates_to_pem([pki.ca_certificate("manufacturer-root")]).encode())
            write("server_cert.pem", certificates_to_pem(pki.chain_of("csms-server-ecdsa")[:1]).encode())
            write("server_key.pem", (root / "pki" / "keys" / "csms-server-ecdsa.key.pem").read_bytes())
            write("fw_cert.pem", certificates_to_pem(pki.chain_of("firmware-signing")[:1]).encode())
            fw_key = write("fw_key.pem", (root / "pki" / "keys" / "firmware-signing.key.pem").read_bytes())
            image = write("image.bin", os.urandom(70_000))
            signature = sign_file(image, load_key_file(fw_key, PASS.encode()), pki.chain_of("firmware-signing")[0])
            write("signature.b64", signature.b64.encode() + b"\n")
            ca = pki.ca("manufacturer-root")
            crl = build_crl(ca.certificate, ca.key, [], at=NOW, number=1, validity=timedelta(days=1))
            write("crl.pem", crl.public_bytes(Encoding.PEM))
            write("toml.toml", default_config_text().encode())
            write("registry.txt", b"CS-1\n")
            # The options --check-config needs last: any truncation leaves one out (exit 2, never a gateway that runs).
            write("gateway_toml.toml", (f'stations = "{root / "scratch" / "stations.db"}"\nprofile = "1"\n'
                                        'listen = "127.0.0.1:0"\nupstream = "ws://127.0.0.1:9/ocpp"\n').encode())
            f.good["pki"] = root / "pki"
        finally:
            pki.close()
        for path in root.rglob("*"):
            os.chmod(path, 0o777 if path.is_dir() else 0o666)  # readable by nobody, except the permission cases
        yield f


CASES = [pytest.param(slot, kind, id=f"{slot.name}-{kind}") for slot in SLOTS for kind in KINDS]


@pytest.mark.parametrize(("slot", "kind"), CASES)
def test_bad_file(files: Files, slot: Slot, kind: str) -> None:
    bad = files.bad(kind, slot.good_key, slot.name.replace(" ", "_"))
    warm_up = slot.argv(files, files.bad("missing", slot.good_key, slot.name.replace(" ", "_")))
    result = invoke(*slot.argv(files, bad), env=ENV, as_nobody=kind == "permission", warm_up=warm_up)
    code = expected(slot.content, kind)
    if code == 0:
        assert result.code == 0, result
        assert "Traceback" not in result.err
        return
    assert_one_line_error(result, code)
    if kind == "big" and slot.content != "image":
        assert "larger than" in result.err and ("MiB" in result.err or "KiB" in result.err), result.err
    if kind in ("directory", "fifo", "missing", "permission"):
        assert str(bad) in result.err, result.err  # the path is named


JSON_CASES = [pytest.param(slot, kind, id=f"{slot.name}-{kind}") for slot in SLOTS if slot.json
              for kind in ("garbage", "missing", "wrong_kind")]


@pytest.mark.parametrize(("slot", "kind"), JSON_CASES)
def test_bad_file_with_json(files: Files, slot: Slot, kind: str) -> None:
    """With --json, one JSON error object on stdout (a report such as firmware verify's is data, not an error)."""
    bad = files.bad(kind, slot.good_key, slot.name.replace(" ", "_"))
    result = invoke(*slot.argv(files, bad), "--json", env=ENV)
    code = expected(slot.content, kind)
    assert result.code == code, result
    data = json.loads(result.out)
    if slot.name.startswith("firmware verify") and "status" in data:  # the station's report, and its error object
        assert data["status"] != "SignatureVerified" and data["error"]["exit_code"] == 1, data
        return
    error = result.json_error()
    assert error["message"] and "Traceback" not in result.err


def _file_options() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                walk(sub, [*path, name])
        for param in command.params:  # a group's own options too (``gateway`` runs without a subcommand)
            if isinstance(param.type, click.Path) or param.name in FILE_PARAMETERS:
                found.add((" ".join(path), param.opts[0] if param.opts else str(param.name)))

    walk(cli, [])
    return found


def test_every_file_option_is_covered() -> None:
    covered = {(slot.name.rsplit(" ", 1)[0], slot.name.rsplit(" ", 1)[1]) for slot in SLOTS}
    renamed = {("pki verify", "CHAIN"): ("pki verify", "chain_file"), ("pki lint", "CERT"): ("pki lint", "cert_file"),
               ("pki hashdata", "CERT"): ("pki hashdata", "cert_file"), ("firmware sign", "IMAGE"): ("firmware sign", "image"),
               ("firmware verify", "IMAGE"): ("firmware verify", "image")}
    covered = {renamed.get(c, c) for c in covered}
    missing = _file_options() - covered - NOT_INPUT_FILES
    assert not missing, f"file options without bad-file cases: {sorted(missing)}"



STORE_SLOTS = [
    pytest.param(["events", "query", "--store"], id="events query --store"),
    pytest.param(["events", "stats", "--store"], id="events stats --store"),
    pytest.param(["stations", "list", "--stations"], id="stations list --stations"),
    pytest.param(["stations", "add", "CS-9", "--generate", "--stations"], id="stations add --stations"),
    pytest.param(["gateway", "--listen", "127.0.0.1:0", "--profile", "1", "--upstream", "ws://127.0.0.1:9/ocpp",
                  "--admin", "off", "--stations"], id="gateway --stations"),
]


@pytest.mark.parametrize("kind", ["garbage", "directory", "fifo", "permission"])
@pytest.mark.parametrize("args", STORE_SLOTS)
def test_bad_store_file(files: Files, args: list[str], kind: str) -> None:
    """A store path that is no SQLite database (a FIFO would make SQLite wait forever) is an I/O error."""
    bad = files.bad(kind, "toml", "store-" + "_".join(a for a in args if "/" not in a))
    warm_up = [*args, str(bad) + "-missing/stations.db"]  # a store that cannot be created: the gateway stops too
    result = invoke(*args, bad, env=ENV, as_nobody=kind == "permission", warm_up=warm_up)
    assert_one_line_error(result, 3, str(bad))
