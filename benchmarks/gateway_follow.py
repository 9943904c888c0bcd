"""What following the CSMS's security changes costs the gateway per relayed frame and per handshake.

The relay hands every frame, both ways, to the station's :class:`FollowSession` (inside websockets'
``data_received`` with the splice). This measures those hooks per frame for the frames a relay mostly
sees, against the baseline of parsing the same frame as JSON (what a follower that read every frame would
pay at least), and the upstream request headers of a profile-3 handshake (:func:`station_headers`)
against parsing the station certificate alone. Same process, same run; the load average is printed.

    python benchmarks/gateway_follow.py [--number N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import print_table
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.events.sink import NullSink
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway.follower import ChangeFollower
from ocppsec.security_profiles.gateway.upstream import station_headers
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

FRAMES: dict[str, tuple[str, str]] = {
    # name: (direction, frame)
    "station Heartbeat": ("from", '[2,"19223201","Heartbeat",{}]'),
    "station MeterValues": ("from", json.dumps([2, "19223202", "MeterValues", {"evseId": 1, "meterValue": [
        {"timestamp": "2026-12-01T12:00:00.000Z", "sampledValue": [{"value": 1234.5, "measurand": "Energy.Active.Import.Register"}]}]}])),
    "CSMS Heartbeat answer": ("to", '[3,"19223201",{"currentTime":"2026-12-01T12:00:00.000Z"}]'),
    "CSMS GetVariables": ("to", json.dumps([2, "c-1", "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}])),
    "CSMS SetVariables (other)": ("to", json.dumps([2, "c-2", "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "300"}]}])),
}


def measure(fn: Any, number: int, repeat: int) -> float:
    """Best of ``repeat`` runs, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


async def frames(number: int, repeat: int) -> list[dict[str, Any]]:
    registry = MemoryRegistry([StationRecord("CS-1", 2, password_hash="x")])
    follower = ChangeFollower(registry, NullSink(), lambda: datetime.now(UTC))
    session = follower.session("CS-1", OcppVersion.V201)
    rows = []
    for name, (direction, frame) in FRAMES.items():
        hook = session.from_station if direction == "from" else session.to_station
        cost = measure(lambda hook=hook, frame=frame: hook(frame), number, repeat)
        base = measure(lambda frame=frame: json.loads(frame), number, repeat)
        rows.append({"frame": name, "follow_us": cost, "json_loads_us": base, "ratio": cost / base})
    await session.close()
    return rows


def headers(number: int, repeat: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    h = Hierarchy.build(HierarchyConfig.default(cso_name="ACME CSO", csms_fqdn="csms.example"), at=now)
    leaf = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "ACME CSO", "CN": "CS-0001"}, at=now)
    der = leaf.certificate.public_bytes(Encoding.DER)
    cost = measure(lambda: station_headers(3, der), number, repeat)
    base = measure(lambda: x509.load_der_x509_certificate(der), number, repeat)
    return {"station_headers_us": cost, "der_parse_us": base, "ratio": cost / base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    rows = asyncio.run(frames(args.number, args.repeat))
    print_table(["frame", "follow hooks (us)", "json.loads (us)", "ratio"],
                [[r["frame"], r["follow_us"], r["json_loads_us"], r["ratio"]] for r in rows])
    hdr = headers(max(args.number // 20, 100), args.repeat)
    print()
    print_table(["per profile-3 handshake", "us", "DER parse (us)", "ratio"],
                [["X-OCPP-* upstream headers", hdr["station_headers_us"], hdr["der_parse_us"], hdr["ratio"]]])
    print(f"\nload average (1 min): {load:.2f}")
    print(json.dumps({"frames": rows, "headers": hdr, "loadavg_1min": load}, separators=(",", ":")))


if __name__ == "__main__":
    main()
