"""The station's certificate store under hostile CSMS messages: CertificateSigned, InstallCertificate, DeleteCertificate.

Input: up to four operations split at the separator. Each starts with one byte: the low two bits pick
the message (0 CertificateSigned, 1 InstallCertificate, 2 DeleteCertificate with JSON hash data, 3 a
connection with the first credential), the next bits its use, root type, time offset and requestId;
the rest is the payload. Every message returns an Outcome, and afterwards the store must still answer
GetInstalledCertificateIds, list its credentials and read their chains: no input may poison it.
"""

from __future__ import annotations

import json
from datetime import timedelta

from ocppsec.pki.certmgmt import CertificateUse, RootType
from ocppsec.pki.errors import InputError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.pem import load_certificate

from . import _material as m
from ._harness import SEP, harness, join, never_raises, text

ALLOWED: tuple[type[Exception], ...] = ()  # every entry point returns an Outcome or a listing
_USES = (None, *CertificateUse)
_ROOTS = tuple(RootType)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    store = m.station_base().fresh()
    for op in data.split(SEP, 3):
        if not op:
            continue
        head, payload = op[0], text(op[1:])
        kind, param = head & 3, head >> 2
        at = m.NOW + timedelta(days=(param >> 3) * 400)
        if kind == 0:
            use = _USES[param % len(_USES)]
            request_id = (param >> 4) or None
            never_raises(store.certificate_signed, payload, use, at=at, request_id=request_id,
                         require_request_id=bool(param & 4))
        elif kind == 1:
            never_raises(store.install_root, _ROOTS[param % len(_ROOTS)], payload, at=at, max_chars=5500 + param * 100)
        elif kind == 2:
            try:
                wanted = CertificateHashData.from_ocpp(json.loads(payload))
            except (ValueError, InputError, AttributeError, TypeError):  # not hash data: the codec refuses it first
                continue
            never_raises(store.delete, wanted)
        else:
            creds = store.client_credentials(_USES[1 + param % (len(_USES) - 1)] or CertificateUse.CHARGING_STATION)
            if creds:
                never_raises(store.connected, creds[-1 if param & 8 else 0])
            never_raises(store.renewals_due, at=at)
    algorithm = ("SHA256", "SHA384", "SHA512")[len(data) % 3]  # one listing per input: the store's hot spot
    never_raises(store.installed, None, algorithm)
    for use in CertificateUse:
        for cred in never_raises(store.client_credentials, use):
            never_raises(lambda c=cred: (c.chain, c.leaf, c.fingerprint))
    never_raises(store.csms_trust_roots)
    for root_type in RootType:
        never_raises(store.roots, root_type)
    never_raises(store.snapshot)


def seeds() -> dict[str, bytes]:
    h = m.hierarchy()
    base = m.station_base()
    cs_chain = base.chains[CertificateUse.CHARGING_STATION]
    v2g_chain = base.chains[CertificateUse.V2G]
    store = base.fresh()
    root_hd = compute_hash_data(h.ca("mo-root").certificate, None)
    leaf_hd = compute_hash_data(load_certificate(v2g_chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"),
                                h.ca("cpo-sub-ca-2").certificate)
    assert store.certificate_signed(cs_chain, CertificateUse.CHARGING_STATION, at=m.NOW).accepted
    return {
        "certificate-signed": join(bytes([0 | (1 << 2)]) + cs_chain.encode()),
        "certificate-signed-any-use": join(b"\x00" + cs_chain.encode()),
        "v2g-signed-then-delete-leaf": join(bytes([0 | (3 << 2)]) + v2g_chain.encode(),
                                            b"\x02" + json.dumps(leaf_hd.to_ocpp()).encode(), b"\x03"),
        "install-oem-root": join(bytes([1 | (4 << 2)]) + m.pem(h.ca("oem-root").certificate).encode()),
        "install-csms-root-again": join(b"\x01" + m.pem(h.ca("csms-root").certificate).encode()),
        "install-sub-ca": join(bytes([1 | (2 << 2)]) + m.pem(h.ca("cpo-sub-ca-1").certificate).encode()),
        "delete-mo-root": join(b"\x02" + json.dumps(root_hd.to_ocpp()).encode()),
        "signed-then-connect": join(b"\x04" + cs_chain.encode(), b"\x03"),
    }
