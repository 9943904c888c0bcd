"""Benchmark: N stations' CSRs through the CSMS certificate service vs raw issuance, same run, same CSRs.

- raw: ``PkiDirectory.issue_many`` (CSR policy, signing, one ledger transaction per batch) — the
  issuance figure of ``benchmarks/pki.py``;
- service: ``CertificateService.handle_many`` with a ``LocalCaSigner`` over the same directory (strict
  PEM parsing, per-station policy with serial and CSO name, signing, ledger, inventory rows, chain).

Usage: ``python benchmarks/certificates.py [--stations 10000] [--batch 500]``. Prints a table, then the
figures as one JSON object on the last line. Goal: service / raw >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki import HierarchyConfig, PkiDirectory, PolicyContext, make_csr
from ocppsec.pki.certmgmt import CertificateService, LocalCaSigner, SignRequest, StationInfo, inventory_location, open_inventory
from ocppsec.pki.keys import KeySpec, LocalKey, generate_key
from ocppsec.pki.profiles import get_profile

CSO = "Example CSO"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    at = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        pki = PkiDirectory.init(Path(tmp) / "pki", HierarchyConfig.default(cso_name=CSO), passphrase=None, at=at - timedelta(hours=1))
        profile = get_profile("charging-station")
        t0 = time.perf_counter()
        serials = [f"SN-{n:06d}" for n in range(args.stations)]
        csrs = [make_csr(LocalKey(generate_key(KeySpec.P256)), {"O": CSO, "CN": s}, profile) for s in serials]
        pems = [c.public_bytes(Encoding.PEM).decode() for c in csrs]
        prep = time.perf_counter() - t0

        ctx = PolicyContext(cso_name=CSO)
        inventory = open_inventory(inventory_location(pki.path))
        stations = {f"CS{n:06d}": StationInfo(f"CS{n:06d}", serial=s) for n, s in enumerate(serials)}
        service = CertificateService(LocalCaSigner(pki), cso_name=CSO, stations=stations, inventory=inventory)
        ids = list(stations)
        raw = svc = 0.0
        accepted = 0
        # batches alternate between the two paths so that load from other processes hits both alike
        for i in range(0, len(csrs), args.batch):
            t0 = time.perf_counter()
            pki.issue_many(csrs[i:i + args.batch], ca="csms-root", at=at, profile=profile, ctx=ctx)
            raw += time.perf_counter() - t0
            batch = [(ids[n], SignRequest(pems[n])) for n in range(i, min(i + args.batch, len(pems)))]
            t0 = time.perf_counter()
            accepted += sum(1 for outcome, order in service.handle_many(batch, at=at) if outcome.accepted and order)
            svc += time.perf_counter() - t0
        inventory_rows = inventory.count()
        inventory.close()
        pki.close()

    n = args.stations
    raw_rate, svc_rate = n / raw, n / svc
    print(f"{'step':<44}{'seconds':>10}{'per second':>14}")
    print(f"{'CSR generation (stations, not timed below)':<44}{prep:>10.2f}{n / prep:>14.0f}")
    print(f"{'raw issuance (PkiDirectory.issue_many)':<44}{raw:>10.2f}{raw_rate:>14.0f}")
    print(f"{'CSMS service (handle_many + LocalCaSigner)':<44}{svc:>10.2f}{svc_rate:>14.0f}")
    print(f"accepted {accepted}/{n}, inventory rows {inventory_rows}, ratio {svc_rate / raw_rate:.2f} (goal >= 0.8)")
    print(json.dumps({"benchmark": "certificates", "stations": n, "batch": args.batch, "accepted": accepted,
                      "raw_csr_per_s": round(raw_rate, 1), "service_csr_per_s": round(svc_rate, 1),
                      "ratio": round(svc_rate / raw_rate, 3), "goal": 0.8, "ok": svc_rate / raw_rate >= 0.8}))


if __name__ == "__main__":
    main()
