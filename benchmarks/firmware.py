"""Benchmark: sign and verify a large firmware image, against ``openssl dgst -sha256 -sign/-verify``.

Usage: ``python benchmarks/firmware.py [--size-mib 1024] [--repeat 2]``

Each measurement runs in its own process so its peak RSS (VmHWM from /proc) is its own.
For ocppsec two times are reported: the signing/verifying call itself ("op", what the library
costs) and the whole process (interpreter start and imports included). Throughput ratios are
ocppsec / openssl (1.0 = as fast as openssl). The image is read once beforehand so every run
hashes from the page cache. The last line is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ocppsec.pki.hierarchy import Hierarchy

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from cryptography import x509
from ocppsec.firmware_signing import sign_file, verify_file
from ocppsec.pki.keys.files import load_key_file
mode, image, key, cert, root, sig = sys.argv[1:7]
certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
t0 = time.perf_counter()
if mode == "sign":
    signature = sign_file(image, load_key_file(key, None), certificate)
    Path(sig).write_text(signature.b64)
else:
    roots = [x509.load_pem_x509_certificate(Path(root).read_bytes())]
    verify_file(image, Path(sig).read_text(), certificate, roots)
op = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"op_s": op, "maxrss_kib": hwm, "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and stdout of one child process.

    Peak RSS is the child's VmHWM from /proc, polled every 5 ms while it runs (VmHWM belongs to the
    process image after exec; ``ru_maxrss`` from ``wait4`` would include the forked copy of this
    benchmark process before exec, about 40 MiB, for every child alike).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid))
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {err.decode()}")
    return wall, peak, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    h = Hierarchy.build(at=datetime.now(UTC))
    fw = h.certificates["firmware-signing"]
    assert fw.key is not None
    with tempfile.TemporaryDirectory(prefix="ocppsec-bench-") as tmp:
        d = Path(tmp)
        key = d / "fw.key"
        key.write_bytes(fw.key.private_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        pub = d / "fw.pub"
        pub.write_bytes(fw.certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        cert = d / "fw.pem"
        cert.write_text(fw.chain_pem())
        root = d / "root.pem"
        root.write_bytes(h.ca("manufacturer-root").certificate.public_bytes(serialization.Encoding.PEM))
        image = d / "firmware.bin"
        block = os.urandom(1024 * 1024)
        with image.open("wb") as fh:
            for _ in range(args.size_mib):
                fh.write(block)
        with image.open("rb") as fh:  # warm the page cache
            while fh.read(8 * 1024 * 1024):
                pass
        ours_sig = d / "ours.b64"
        der_sig = d / "openssl.der"

        def ours(mode: str) -> tuple[float, float, int]:
            wall, rss, out = run_measured([sys.executable, "-c", CHILD, mode, str(image), str(key), str(cert),
                                           str(root), str(ours_sig)])
            report = json.loads(out)
            return wall, float(report["op_s"]), max(rss, int(report["maxrss_kib"]))

        def openssl(mode: str) -> tuple[float, int]:
            if mode == "sign":
                cmd = ["openssl", "dgst", "-sha256", "-sign", str(key), "-out", str(der_sig), str(image)]
            else:
                cmd = ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(der_sig), str(image)]
            wall, rss, _ = run_measured(cmd)
            return wall, rss

        results: dict[str, dict[str, float]] = {}
        for mode in ("sign", "verify"):
            best_ours = (float("inf"), float("inf"), 0)
            best_ssl = (float("inf"), 0)
            for _ in range(args.repeat):
                o = ours(mode)
                s = openssl(mode)
                best_ours = min(best_ours, o, key=lambda t: t[1])
                best_ssl = min(best_ssl, s, key=lambda t: t[0])
            wall, op, rss = best_ours
            ssl_wall, ssl_rss = best_ssl
            mib = args.size_mib
            results[mode] = {
                "ocppsec_op_s": round(op, 3),
                "ocppsec_process_s": round(wall, 3),
                "openssl_s": round(ssl_wall, 3),
                "ocppsec_op_mib_s": round(mib / op, 1),
                "ocppsec_process_mib_s": round(mib / wall, 1),
                "openssl_mib_s": round(mib / ssl_wall, 1),
                "ratio_op": round(ssl_wall / op, 3),
                "ratio_process": round(ssl_wall / wall, 3),
                "ocppsec_peak_rss_mib": round(rss / 1024, 1),
                "openssl_peak_rss_mib": round(ssl_rss / 1024, 1),
            }

    print(f"firmware image {args.size_mib} MiB, best of {args.repeat}, ECDSA P-256 + SHA-256, 64 KiB chunks")
    header = f"{'':8} {'ocppsec op':>12} {'ocppsec proc':>13} {'openssl':>10} {'ratio op':>9} {'ratio proc':>11} {'peak RSS':>9}"
    print(header)
    for mode, r in results.items():
        print(f"{mode:8} {r['ocppsec_op_mib_s']:>8.0f} MB/s {r['ocppsec_process_mib_s']:>8.0f} MB/s "
              f"{r['openssl_mib_s']:>5.0f} MB/s {r['ratio_op']:>9.3f} {r['ratio_process']:>11.3f} "
              f"{r['ocppsec_peak_rss_mib']:>5.1f} MiB")
    summary = {
        "benchmark": "firmware",
        "image_mib": args.size_mib,
        "repeat": args.repeat,
        "chunk_kib": 64,
        "scheme": "ecdsa-sha256",
        **{f"{mode}_{k}": v for mode, r in results.items() for k, v in r.items()},
        "goal_ratio": 0.95,
        "goal_peak_rss_mib": 64,
        "meets_ratio_op": all(r["ratio_op"] >= 0.95 for r in results.values()),
        "meets_peak_rss": all(r["ocppsec_peak_rss_mib"] <= 64 for r in results.values()),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
