"""CSMS side of certificate management: answer SignCertificate from a local PKI directory.

    python examples/certificates_csms.py --pki /tmp/demo-pki --port 9000 [--once]

Creates the PKI directory (unencrypted keys: demo only) if it does not exist, then serves OCPP 1.6,
2.0.1 and 2.1 on ``ws://127.0.0.1:PORT/<station id>``. For every station that connects it triggers a
charging-station certificate, signs the CSR with the ``csms-root`` CA (ledger + ``inventory.db``),
sends CertificateSigned, and lists the station's installed certificates. Run
``examples/certificates_station.py`` against it. This example uses plain ``ws://`` to stay short; a real
CSMS serves profile 2/3 with :func:`ocppsec.security_profiles.server.serve` (see
tests/certmgmt/test_ocpp_loopback.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

from ocppsec.pki import HierarchyConfig, PkiDirectory
from ocppsec.pki.certmgmt import (
    CertificateService,
    InstalledType,
    LocalCaSigner,
    RootType,
    StationInfo,
    Trigger,
    inventory_location,
    open_inventory,
)
from ocppsec.pki.chargepoint import csms_charge_point_class
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion

CSO = "Example CSO"


class Stations(dict[str, StationInfo]):
    """Demo registry: any station is known, its serial number is its identity."""

    def get(self, key: str, default: Any = None) -> StationInfo:  # type: ignore[override]
        return StationInfo(key, serial=key)

    def __getitem__(self, key: str) -> StationInfo:
        return StationInfo(key, serial=key)


async def run(pki_path: Path, port: int, once: bool) -> None:
    if not (pki_path / "ledger.db").exists():
        print(f"creating PKI directory {pki_path} (demo: unencrypted keys)")
        PkiDirectory.init(pki_path, HierarchyConfig.default(cso_name=CSO), passphrase=None,
                          at=datetime.now(UTC) - timedelta(minutes=5))
    pki = PkiDirectory.open(pki_path)
    inventory = open_inventory(inventory_location(pki_path))
    service = CertificateService(LocalCaSigner(pki), cso_name=CSO, stations=Stations(), inventory=inventory, ledger=pki.ledger)
    events = MemorySink()  # a CSMS gives an event store here: ocppsec.eventlog.open_store(...)
    classes = {v.subprotocol: csms_charge_point_class(v, service, events=events) for v in OcppVersion}
    done = asyncio.Event()

    async def handler(ws: Any) -> None:
        station_id = ws.request.path.strip("/")
        cp = classes[ws.subprotocol](station_id, ws)
        task = asyncio.create_task(cp.start())
        print(f"{station_id} connected ({ws.subprotocol})")
        try:
            status = await cp.trigger(Trigger.SIGN_CHARGING_STATION)
            print(f"{station_id}: TriggerMessage -> {status.value}")
            await asyncio.wait_for(cp.signed.wait(), 30)
            order, outcome = cp.results[-1]
            print(f"{station_id}: CertificateSigned serial {order.chain.leaf.serial_number:x} -> {outcome.status.value}")
            installed = await cp.install_root(RootType.MANUFACTURER, pki.ca_certificate("manufacturer-root"))
            print(f"{station_id}: InstallCertificate ManufacturerRoot -> {installed.status.value}")
            status_, report = await cp.get_installed([InstalledType.MANUFACTURER_ROOT])
            print(f"{station_id}: GetInstalledCertificateIds -> {status_.value}, reconcile {report.to_json()}")
            for entry in inventory.for_station(station_id):
                print(f"  inventory: {entry.kind:<18} serial {entry.serial} {entry.state}")
            for event in events.events:
                print(f"  security event: {event.type} ({event.tech_info or ''})")
        finally:
            if once:
                done.set()
            with contextlib.suppress(Exception):
                await task

    async with websockets.serve(handler, "127.0.0.1", port, subprotocols=[v.subprotocol for v in OcppVersion]):  # type: ignore[list-item]
        print(f"listening on ws://127.0.0.1:{port}/<station id>")
        if once:
            await done.wait()
        else:
            await asyncio.Future()
    inventory.close()
    pki.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pki", type=Path, default=Path("demo-pki"))
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--once", action="store_true", help="exit after the first station")
    args = parser.parse_args()
    asyncio.run(run(args.pki, args.port, args.once))


if __name__ == "__main__":
    main()
