"""A small CSMS at security profile 1, 2 or 3, built with ``ocppsec.security_profiles.serve`` and the
mobilityhouse ``ocpp`` package (1.6 and 2.0.1). Run::

    ocppsec stations add CS-1 --profile 3 --serial SN-0001 --stations st.db
    python examples/csms.py --listen 127.0.0.1:8443 --profile 3 --cert rsa.pem --key rsa.key \
        --cert ecdsa.pem --key ecdsa.key --trust csms-root.pem --cso-name "Example CSO" --stations st.db
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call_result as r201

from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles import CertChain, ServerPolicy, open_registry, parse_profiles, serve, server_context
from ocppsec.security_profiles.ocpp_glue import csms_handler


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Csms16(Cp16):
    @on("BootNotification")
    async def on_boot(self, **_: Any) -> Any:
        return r16.BootNotification(current_time=now(), interval=60, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        return r16.Heartbeat(current_time=now())

    @on("SecurityEventNotification")
    async def on_event(self, type: str, timestamp: str, **_: Any) -> Any:
        logging.warning("station %s reports %s", self.id, type)
        return r16.SecurityEventNotification()


class Csms201(Cp201):
    @on("BootNotification")
    async def on_boot(self, **_: Any) -> Any:
        return r201.BootNotification(current_time=now(), interval=60, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        return r201.Heartbeat(current_time=now())

    @on("SecurityEventNotification")
    async def on_event(self, type: str, timestamp: str, **_: Any) -> Any:
        logging.warning("station %s reports %s", self.id, type)
        return r201.SecurityEventNotification()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:8443")
    ap.add_argument("--profile", default="3")
    ap.add_argument("--cert", action="append", default=[])
    ap.add_argument("--key", action="append", default=[])
    ap.add_argument("--trust", action="append", default=[])
    ap.add_argument("--cso-name")
    ap.add_argument("--stations", default="./ocppsec-stations.db")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    host, _, port = args.listen.rpartition(":")
    profiles = parse_profiles(args.profile)
    policy = ServerPolicy(profiles, (OcppVersion.V201, OcppVersion.V16), args.cso_name)
    ctx = None
    if policy.tls:
        mode = "required" if profiles == {3} else ("optional" if 3 in profiles else "none")
        ctx = server_context([CertChain(c, k) for c, k in zip(args.cert, args.key, strict=True)],
                             client_roots=args.trust, client_cert=mode)
    handler = csms_handler({OcppVersion.V16: Csms16, OcppVersion.V201: Csms201})
    async with serve(handler, host, int(port), policy=policy, registry=open_registry(args.stations), ssl_context=ctx):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
