"""A small charging station (``ocpp`` package, 1.6 or 2.0.1) connecting with ``ocppsec.security_profiles.connect``
at profile 1, 2 or 3; it boots, sends a heartbeat and a SecurityEventNotification, then exits. Run::

    python examples/station.py --url wss://localhost:8443/ --identity CS-1 --profile 3 \
        --csms-root csms-root.pem --cert station.pem --key station.key
    STATION_PASSWORD=... python examples/station.py --url ws://localhost:8080/ --identity CS-2 --profile 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as c16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201

from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles import CertChain, connect


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def session(cp: Any, version: OcppVersion) -> None:
    if version is OcppVersion.V16:
        print(await cp.call(c16.BootNotification(charge_point_model="Example", charge_point_vendor="ocppsec")))
        print(await cp.call(c16.Heartbeat()))
        print(await cp.call(c16.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now(), tech_info=None)))
    else:
        print(await cp.call(c201.BootNotification(charging_station={"model": "Example", "vendor_name": "ocppsec"},
                                                  reason="PowerUp")))
        print(await cp.call(c201.Heartbeat()))
        print(await cp.call(c201.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now())))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--profile", type=int, required=True)
    ap.add_argument("--ocpp-version", default="2.0.1")
    ap.add_argument("--csms-root", action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--fqdn")
    args = ap.parse_args()
    version = OcppVersion.parse(args.ocpp_version)
    chain = CertChain(args.cert, args.key) if args.cert else None
    conn = await connect(args.url, args.identity, profile=args.profile, versions=[version],
                         password=os.environ.get("STATION_PASSWORD"), csms_roots=args.csms_root, client_chain=chain,
                         fqdn=args.fqdn)
    cp = (Cp16 if version is OcppVersion.V16 else Cp201)(args.identity, conn)
    runner = asyncio.create_task(cp.start())
    try:
        await session(cp, version)
    finally:
        runner.cancel()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
