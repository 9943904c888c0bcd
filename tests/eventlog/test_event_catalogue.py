"""The catalogue as data: every event, names per version, critical flags per version."""

from __future__ import annotations

import pytest

from ocppsec.pki.events import catalogue
from ocppsec.pki.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


def test_every_event_of_the_reference_table_is_there() -> None:
    expected = {
        "FirmwareUpdated", "FailedToAuthenticateAtCsms", "CsmsFailedToAuthenticate", "SettingSystemTime",
        "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared", "ReconfigurationOfSecurityParameters",
        "MemoryExhaustion", "InvalidMessages", "AttemptedReplayAttacks", "TamperDetectionActivated",
        "InvalidFirmwareSignature", "InvalidFirmwareSigningCertificate", "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate", "DiscardedRenewedClientCertificate", "InvalidTLSVersion",
        "InvalidTLSCipherSuite", "MaintenanceLoginAccepted", "MaintenanceLoginFailed",
    }
    assert set(catalogue.CATALOGUE) == expected
    assert all(d.description for d in catalogue.CATALOGUE.values())


@pytest.mark.parametrize(
    ("v16", "canonical"),
    [
        ("InvalidCentralSystemCertificate", "InvalidCsmsCertificate"),
        ("InvalidChargePointCertificate", "InvalidChargingStationCertificate"),
        ("FailedToAuthenticateAtCentralSystem", "FailedToAuthenticateAtCsms"),
        ("CentralSystemFailedToAuthenticate", "CsmsFailedToAuthenticate"),
        ("StartupOfTheDevice", "StartupOfTheDevice"),
    ],
)
def test_name_mapping_both_ways(v16: str, canonical: str) -> None:
    assert catalogue.canonical_name(v16) == canonical
    assert catalogue.canonical_name(canonical) == canonical
    assert catalogue.name_for(canonical, V16) == v16
    assert catalogue.name_for(v16, V201) == canonical
    assert catalogue.name_for(v16, V21) == canonical


@pytest.mark.parametrize(
    ("name", "c16", "c201", "c21"),
    [
        ("FirmwareUpdated", True, True, True),
        ("InvalidFirmwareSignature", False, True, True),  # 2023 errata: critical in 2.0.1
        ("InvalidFirmwareSigningCertificate", False, True, True),
        ("InvalidCsmsCertificate", False, True, True),
        ("InvalidCentralSystemCertificate", False, True, True),
        ("InvalidTLSVersion", False, True, True),
        ("InvalidTLSCipherSuite", False, True, True),
        ("InvalidMessages", False, False, False),
        ("MaintenanceLoginFailed", None, True, True),  # not a 1.6 event
        ("DiscardedRenewedClientCertificate", None, True, True),
        ("VendorSpecificThing", None, None, None),
    ],
)
def test_critical_flags_per_version(name: str, c16: bool | None, c201: bool | None, c21: bool | None) -> None:
    assert catalogue.is_critical(name, V16) is c16
    assert catalogue.is_critical(name, V201) is c201
    assert catalogue.is_critical(name, V21) is c21


def test_unknown_and_vendor_names_are_kept_verbatim() -> None:
    for name in ("CSRGenerationFailed", "acme:DoorOpened", "invalidtlsversion"):
        assert catalogue.lookup(name) is None
        assert catalogue.canonical_name(name) == name
        assert catalogue.name_for(name, V16) == name


def test_events_without_a_16_name_keep_their_name_in_16() -> None:
    assert catalogue.name_for("MaintenanceLoginAccepted", V16) == "MaintenanceLoginAccepted"
    assert not catalogue.CATALOGUE["MaintenanceLoginAccepted"].defined_in(V16)


def test_all_names_fit_the_type_field() -> None:
    for d in catalogue.CATALOGUE.values():
        for version in OcppVersion:
            assert len(d.name_in(version)) <= 50
