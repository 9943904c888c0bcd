"""Benchmark: ``ocppsec pki issue --batch`` against one ``ocppsec pki issue`` per CSR and against the library.

Usage: ``python benchmarks/pki_batch.py [--csrs 5000] [--singles 20] [--rounds 3]``

All three issue P-256 station certificates from PEM CSR files into one encrypted PKI directory (a copy per
round, so each starts from the same ledger):

- ``batch``: one ``ocppsec pki issue DIR --ca csms-root --batch FOLDER --out-dir OUT`` process for all CSRs
  (reads the files, the CSR policy, signing, the SQLite ledger, chain files, the JSON report);
- ``per-CSR``: ``ocppsec pki issue DIR --ca csms-root --csr FILE --out FILE`` once per CSR, for ``--singles`` of
  them (each process starts, opens the directory, decrypts the CA key, records one certificate); the figure
  for all CSRs is extrapolated from their mean;
- ``library``: ``PkiDirectory.issue_many`` over the CSRs already parsed, in this process (the floor).

Best and median of ``--rounds`` rounds (wall clock); the 1-minute load average is sampled after each round.
The last line is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _util import print_table
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki import KeySpec, PkiDirectory, generate_key
from ocppsec.pki.csr import make_csr
from ocppsec.pki.hierarchy import HierarchyConfig

PASS = "benchmark passphrase"
CSO = "Bench CSO"


def _cli(*args: str | Path) -> None:
    env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *map(str, args)], capture_output=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"ocppsec {' '.join(map(str, args))} failed: {proc.stderr.decode()[:300]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csrs", type=int, default=5000)
    ap.add_argument("--singles", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pki-batch-"))
    try:
        template = work / "template"
        PkiDirectory.init(template, HierarchyConfig.default(cso_name=CSO), passphrase=PASS.encode(),
                          at=datetime.now(UTC)).close()
        folder = work / "csrs"
        folder.mkdir()
        csrs = []
        for n in range(args.csrs):
            csr = make_csr(generate_key(KeySpec.P256), {"O": CSO, "CN": f"CS-{n:05d}"})
            csrs.append(csr)
            (folder / f"CS-{n:05d}.csr").write_bytes(csr.public_bytes(Encoding.PEM))
        batch, single, library, loads = [], [], [], []
        for r in range(args.rounds):
            d = work / f"round{r}"
            for name in ("batch", "single", "library"):
                shutil.copytree(template, d / name)
            t = time.perf_counter()
            env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}
            proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "pki", "issue", str(d / "batch"), "--ca",
                                   "csms-root", "--batch", str(folder), "--out-dir", str(d / "out")],
                                  capture_output=True, env=env, check=False)
            batch.append(time.perf_counter() - t)
            if proc.returncode != 0 or json.loads(proc.stdout)["issued"] != args.csrs:
                raise SystemExit(f"the batch failed: {proc.stderr.decode()[:300]}")
            t = time.perf_counter()
            for n in range(args.singles):
                _cli("pki", "issue", d / "single", "--ca", "csms-root", "--csr", folder / f"CS-{n:05d}.csr",
                     "--expected-cn", f"CS-{n:05d}", "--out", d / f"single-{n}.pem")
            single.append((time.perf_counter() - t) / args.singles)
            pki = PkiDirectory.open(d / "library", PASS.encode())
            t = time.perf_counter()
            pki.issue_many(csrs, ca="csms-root", at=datetime.now(UTC))
            library.append(time.perf_counter() - t)
            pki.close()
            loads.append(os.getloadavg()[0])
            shutil.rmtree(d)
        n = args.csrs
        rows = [
            ["batch (one process)", min(batch), statistics.median(batch), n / statistics.median(batch)],
            [f"per-CSR process (x{n}, from {args.singles})", min(single) * n, statistics.median(single) * n,
             1 / statistics.median(single)],
            ["library issue_many", min(library), statistics.median(library), n / statistics.median(library)],
        ]
        print(f"{n} P-256 station certificates from CSR files, {args.rounds} rounds; load average "
              f"{', '.join(f'{x:.1f}' for x in loads)}")
        print_table(["how", "best s", "median s", "certs/s"], rows)
        print(json.dumps({
            "csrs": n, "batch_s": round(statistics.median(batch), 3),
            "per_csr_s_each": round(statistics.median(single), 3),
            "per_csr_s_extrapolated": round(statistics.median(single) * n, 1),
            "library_s": round(statistics.median(library), 3),
            "batch_vs_per_csr": round(statistics.median(single) * n / statistics.median(batch), 1),
            "batch_vs_library": round(statistics.median(batch) / statistics.median(library), 2),
            "load_avg_1m": [round(x, 2) for x in loads], "cpus": os.cpu_count(),
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
