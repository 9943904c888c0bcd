"""Small helpers shared by the benchmarks: a plain-text table, peak RSS from /proc, the gateway benchmarks' PKI."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` under ``headers`` as an aligned text table (numbers right-aligned)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for r in text:
        print(line(r))


def peak_rss_kib(pid: int | str = "self") -> int:
    """Peak resident set size (VmHWM) of a process in KiB; 0 when /proc has no answer."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for entry in fh:
                if entry.startswith("VmHWM:"):
                    return int(entry.split()[1])
    except OSError:
        pass
    return 0


def gateway_pki(d: Path, cso: str) -> tuple[dict[str, Any], Any, datetime]:
    """The default hierarchy (FQDN localhost, made an hour ago) with its files in ``d``: the CSO root and the
    RSA and ECDSA server chains and keys and a station certificate (CN SN-BENCH) as ``(cert, key)`` paths.
    Returns the files, the hierarchy (for more) and its time."""
    from cryptography.hazmat.primitives import serialization

    from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
    from ocppsec.pki.pem import certificates_to_pem

    now = datetime.now(UTC) - timedelta(hours=1)
    h = Hierarchy.build(HierarchyConfig.default(cso_name=cso, csms_fqdn="localhost"), at=now)

    def write(issued: Any, name: str) -> tuple[str, str]:
        cert, key = d / f"{name}.pem", d / f"{name}.key"
        cert.write_text(certificates_to_pem(issued.chain))
        key.write_bytes(issued.key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
        return str(cert), str(key)

    root = d / "root.pem"
    root.write_text(certificates_to_pem([h.ca("csms-root").certificate]))
    station = h.issue_leaf("charging-station", ca="csms-root", subject={"O": cso, "CN": "SN-BENCH"}, at=now)
    files = {"root": str(root), "rsa": write(h.certificates["csms-server-rsa"], "rsa"),
             "ecdsa": write(h.certificates["csms-server-ecdsa"], "ecdsa"), "station": write(station, "station")}
    return files, h, now


def collapsed_summary(path: Path, top: int = 40) -> list[tuple[str, float, float]]:
    """(function, inclusive %, self %) of py-spy's raw (collapsed) output, by function and file."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")") if "(" in f else f
                  for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    return [(f, 100 * c / total, 100 * own[f] / total) for f, c in inclusive.most_common(top)] if total else []
