"""Benchmark: OCSP responses per second (pre-produced and on demand) vs ``openssl ocsp -port`` serving the
same index, and CRL generation for many revoked serials vs ``openssl ca -gencrl``.

Usage: ``python benchmarks/revocation.py [--certs 200] [--seconds 3] [--clients 4] [--crl-serials 100000]``

Both responders run as their own processes on 127.0.0.1 with the same delegated responder certificate
and key; the same client (threads, one HTTP/1.0-style connection per request, pre-built DER requests)
drives them in turn. ``pre-produced``: requests without a nonce, answered from our cache; ``on demand``:
requests with a nonce, signed per request (openssl signs every answer either way). The openssl index
(``index.txt``) is written from our ledger. Ratios are ocppsec / openssl (>1 = faster than openssl).
The last line is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.client import build_request, check_response
from ocppsec.pki.revocation.crl import build_crl, crl_entries
from ocppsec.pki.revocation.ocsp import OCSP_RESPONDER_ROLE, CertId


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, request: bytes, timeout: float = 30) -> None:
    """Poll with a real request: a bare connect-and-close stalls ``openssl ocsp -port`` (one connection at a time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/", request, {"Content-Type": "application/ocsp-request", "Connection": "close"})
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def drive(port: int, requests: list[bytes], seconds: float, clients: int) -> tuple[float, int]:
    """Requests per second over ``seconds`` with ``clients`` threads; returns (rate, errors)."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(n: int) -> None:
        rnd = random.Random(n)
        while time.monotonic() < stop:
            body = rnd.choice(requests)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/", body, {"Content-Type": "application/ocsp-request", "Connection": "close"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status != 200 or not data.startswith(b"\x30"):
                    errors[n] += 1
                else:
                    counts[n] += 1
            except OSError:
                errors[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0), sum(errors)


def openssl_time(s: datetime) -> str:
    return s.strftime("%y%m%d%H%M%SZ")


def write_index(records: list[CertificateRecord], path: Path) -> None:
    lines = []
    for r in records:
        subject = "/" + "/".join(reversed(r.subject.split(","))) if r.subject else "/CN=x"
        serial = r.serial.upper()
        serial = ("0" + serial) if len(serial) % 2 else serial
        if r.status == "revoked" and r.revoked_at is not None:
            lines.append(f"R\t{openssl_time(r.not_after)}\t{openssl_time(r.revoked_at)},{r.revocation_reason}\t{serial}\tunknown\t{subject}")
        else:
            lines.append(f"V\t{openssl_time(r.not_after)}\t\t{serial}\tunknown\t{subject}")
    path.write_text("\n".join(lines) + "\n")


def bench_ocsp(args: argparse.Namespace, work: Path) -> dict[str, float]:
    now = datetime.now(UTC)
    pki = PkiDirectory.init(work / "pki", HierarchyConfig.default(), passphrase=None, at=now - timedelta(hours=1))
    key = generate_key(KeySpec.P256)
    issued: list[x509.Certificate] = []
    for start in range(0, args.certs, 50):
        csrs = [make_csr(key, {"O": "Example CSO", "CN": f"SN-{n:06d}"}) for n in range(start, min(args.certs, start + 50))]
        issued += [r.issued.certificate for r in pki.issue_many(csrs, ca="csms-root", at=now - timedelta(hours=1))]
    for cert in issued[::10]:
        pki.ledger.revoke(format(cert.serial_number, "x"), "csms-root", now - timedelta(minutes=30), "keyCompromise")
    root = pki.ca_certificate("csms-root")
    load_authorities(pki, ["csms-root"], at=now)  # issue the delegated responder once, shared by both servers
    responder = next(r for r in pki.ledger.all() if r.role == OCSP_RESPONDER_ROLE)
    assert responder.key_ref is not None
    (work / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (work / "rsigner.pem").write_text(responder.pem)
    shutil.copy(pki.path / responder.key_ref[5:], work / "rkey.pem")
    write_index([r for r in pki.ledger.all() if r.issuer_ca == "csms-root" and r.name is None
                 and r.role != OCSP_RESPONDER_ROLE], work / "index.txt")
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    pki.close()

    ids = [CertId.for_certificate(c, root, "sha1") for c in issued]
    plain = [build_request(i, with_nonce=False)[0] for i in ids]
    nonced = [build_request(i, with_nonce=True)[0] for i in ids for _ in range(3)]

    ours_port, ossl_port = free_port(), free_port()
    env = {**os.environ, "OCPPSEC_PASSPHRASE": ""}
    ours = subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "ocsp", "serve", str(work / "pki"), "--listen",
                             f"127.0.0.1:{ours_port}", "--ca", "csms-root", "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ossl = subprocess.Popen(["openssl", "ocsp", "-port", str(ossl_port), "-index", str(work / "index.txt"),
                             "-CA", str(work / "root.pem"), "-rsigner", str(work / "rsigner.pem"), "-rkey",
                             str(work / "rkey.pem"), "-nmin", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert ours.stderr is not None
        ours.stderr.readline()  # "OCSP responder ... on ..." once pre-production is done
        wait_ready(ours_port, plain[0])
        wait_ready(ossl_port, plain[0])
        # both answer correctly before we time them
        for port in (ours_port, ossl_port):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/", plain[1], {"Content-Type": "application/ocsp-request", "Connection": "close"})
            result = check_response(conn.getresponse().read(), ids[1], at=datetime.now(UTC), issuer=root)
            assert result.status.value == "good", (port, result)
        drive(ours_port, plain, 0.5, args.clients)  # warm up
        pre, e1 = drive(ours_port, plain, args.seconds, args.clients)
        demand, e2 = drive(ours_port, nonced, args.seconds, args.clients)
        drive(ossl_port, plain, 0.5, args.clients)
        base, e3 = drive(ossl_port, plain, args.seconds, args.clients)
        base_nonce, e4 = drive(ossl_port, nonced, args.seconds, args.clients)
    finally:
        for proc in (ours, ossl):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"ocsp_preproduced_rps": pre, "ocsp_on_demand_rps": demand, "openssl_ocsp_rps": base,
            "openssl_ocsp_nonce_rps": base_nonce, "ocsp_errors": float(e1 + e2 + e3 + e4)}


def bench_crl(args: argparse.Namespace, work: Path) -> dict[str, float]:
    now = datetime.now(UTC)
    pki = PkiDirectory.open(work / "pki")
    ca = pki.ca("csms-root")
    rnd = random.Random(7)
    template = pki.ledger.all()[0]
    records = [
        CertificateRecord(serial=format(rnd.getrandbits(127) | (1 << 64), "x"), issuer_ca="csms-root",
                          role="charging-station", subject="CN=x", not_before=now, not_after=now + timedelta(days=700),
                          issued_at=now, fingerprint=str(n), pem=template.pem, status=CertificateStatus.REVOKED, revoked_at=now,
                          revocation_reason="keyCompromise" if n % 3 else "superseded")
        for n in range(args.crl_serials)
    ]
    t0 = time.perf_counter()
    crl = build_crl(ca.certificate, ca.key, crl_entries(records), at=now, number=1)
    ours = time.perf_counter() - t0
    size = len(crl.public_bytes(Encoding.DER))
    # openssl ca -gencrl over an index with the same serials
    write_index(records, work / "crl-index.txt")
    (work / "crl-index.txt.attr").write_text("unique_subject = no\n")
    (work / "crlnumber").write_text("01\n")
    key_path = pki.path / "keys" / "csms-root.key.pem"
    (work / "ca.cnf").write_text(
        "[ca]\ndefault_ca = c\n[c]\n"
        f"database = {work / 'crl-index.txt'}\ncrlnumber = {work / 'crlnumber'}\ndefault_md = sha256\n"
        f"default_crl_days = 1\ncertificate = {work / 'root.pem'}\nprivate_key = {key_path}\n"
    )
    pki.close()
    t0 = time.perf_counter()
    subprocess.run(["openssl", "ca", "-gencrl", "-config", str(work / "ca.cnf"), "-out", str(work / "openssl.crl"),
                    "-batch"], check=True, capture_output=True)
    base = time.perf_counter() - t0
    return {"crl_serials": float(args.crl_serials), "crl_build_s": ours, "crl_der_bytes": float(size),
            "openssl_gencrl_s": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--certs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--crl-serials", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocppsec-bench-rev-"))
    try:
        o = bench_ocsp(args, work)
        c = bench_crl(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("OCSP pre-produced (ocppsec)", f"{o['ocsp_preproduced_rps']:.0f} resp/s"),
        ("OCSP on demand, nonce (ocppsec)", f"{o['ocsp_on_demand_rps']:.0f} resp/s"),
        ("OCSP openssl ocsp -port", f"{o['openssl_ocsp_rps']:.0f} resp/s"),
        ("OCSP openssl ocsp -port, nonce", f"{o['openssl_ocsp_nonce_rps']:.0f} resp/s"),
        (f"CRL {args.crl_serials} serials (ocppsec)", f"{c['crl_build_s']:.2f} s, {c['crl_der_bytes'] / 1e6:.1f} MB"),
        (f"CRL {args.crl_serials} serials (openssl ca -gencrl)", f"{c['openssl_gencrl_s']:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"certificates {args.certs}, clients {args.clients}, {args.seconds:g} s per run")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    summary = {
        **{k: round(v, 3) for k, v in {**o, **c}.items()},
        "ratio_preproduced_vs_openssl": round(o["ocsp_preproduced_rps"] / max(o["openssl_ocsp_rps"], 1e-9), 3),
        "ratio_on_demand_vs_openssl_nonce": round(o["ocsp_on_demand_rps"] / max(o["openssl_ocsp_nonce_rps"], 1e-9), 3),
        "ratio_crl_openssl_over_ocppsec_time": round(c["openssl_gencrl_s"] / max(c["crl_build_s"], 1e-9), 3),
        "certs": args.certs, "clients": args.clients, "seconds": args.seconds,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
