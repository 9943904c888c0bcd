"""Station side of certificate management: a station with a certificate store, driven by the CSMS.

    python examples/certificates_station.py --url ws://127.0.0.1:9000 --id SN-0001 \
        --store /tmp/demo-station --csms-root /tmp/demo-pki/certs/csms-root.pem [--version 2.0.1]

Opens (or creates) the station store (keys encrypted with OCPPSEC_PASSPHRASE, default "demo"),
installs the CSMS root, connects, and answers TriggerMessage / CertificateSigned / InstallCertificate /
DeleteCertificate / GetInstalledCertificateIds with the store's rules. It exits once a new client
certificate was accepted and the CSMS went quiet, printing the store's contents.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import websockets

from ocppsec.pki.certmgmt import (
    CertificateUse,
    DirectoryStationStorage,
    RootType,
    StationCertificateStore,
    StationConfig,
)
from ocppsec.pki.chargepoint import station_charge_point_class
from ocppsec.pki.versions import OcppVersion


async def run(url: str, station_id: str, store_path: Path, csms_root: Path, version: OcppVersion) -> None:
    passphrase = os.environ.get("OCPPSEC_PASSPHRASE", "demo").encode()
    store = StationCertificateStore(DirectoryStationStorage(store_path, passphrase),
                                    StationConfig(serial=station_id, organization="Example CSO"))
    outcome = store.install_root(RootType.CSMS, csms_root.read_text(), at=datetime.now(UTC), max_chars=5500)
    print(f"install CSMS root locally -> {outcome.status.value}")
    StationCP = station_charge_point_class(version, store)
    async with websockets.connect(f"{url.rstrip('/')}/{station_id}", subprotocols=[version.subprotocol]) as ws:  # type: ignore[list-item]
        cp = StationCP(station_id, ws)
        task = asyncio.create_task(cp.start())
        await asyncio.wait_for(cp.renewed.wait() if store.certificate(CertificateUse.CHARGING_STATION) else _accepted(store), 30)
        await asyncio.sleep(1.0)  # let the CSMS finish its install/list round
        task.cancel()
    for cred in store.client_credentials():
        leaf = cred.leaf
        print(f"client certificate ({cred.role.value}): {leaf.subject.rfc4514_string()} serial {leaf.serial_number:x} "
              f"valid until {leaf.not_valid_after_utc:%Y-%m-%d}")
    for entry in store.installed():
        print(f"installed {entry.type.value}: serial {entry.hash_data.serial_number}")


async def _accepted(store: StationCertificateStore) -> None:
    while store.certificate(CertificateUse.CHARGING_STATION) is None:
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9000")
    parser.add_argument("--id", default="SN-0001")
    parser.add_argument("--store", type=Path, default=Path("demo-station"))
    parser.add_argument("--csms-root", type=Path, required=True)
    parser.add_argument("--version", default="2.0.1")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.id, args.store, args.csms_root, OcppVersion.parse(args.version)))


if __name__ == "__main__":
    main()
