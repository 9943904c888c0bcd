"""PKI core of ocppsec: profiles, CSR policy, issuance, ledger, validation, CertificateHashData.

This package is also the foundation of the others: the root error (:class:`OcppsecError`), the OCPP
version enum (:class:`OcppVersion`) and the key / store interfaces live here.
"""

from ocppsec.pki.builder import CertificateRequest, build_certificate, new_serial, sign_builder
from ocppsec.pki.errors import (
    BackendError,
    ChainError,
    DuplicateError,
    InputError,
    KeyError_,
    NotFoundError,
    OcppsecError,
    PolicyError,
    SignatureError,
    StoreError,
    UsageError,
    VerificationError,
    Violation,
    WrongPassphraseError,
)
from ocppsec.pki.hierarchy import (
    CertificateAuthority,
    Hierarchy,
    HierarchyConfig,
    IssuedCertificate,
    default_config_text,
)
from ocppsec.pki.keyfile import load_key_file, load_key_pem, write_key_file
from ocppsec.pki.keys import KeySpec, LocalKey, SignatureScheme, SigningKey, generate_key, key_spec_of
from ocppsec.pki.names import make_name, name_attributes, name_value
from ocppsec.pki.pem import certificates_to_pem, load_certificate, load_certificates, load_csr
from ocppsec.pki.profiles import PROFILES, CnKind, Family, Profile, get_profile
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "PROFILES",
    "BackendError",
    "CertificateAuthority",
    "CertificateRequest",
    "ChainError",
    "CnKind",
    "DuplicateError",
    "Family",
    "Hierarchy",
    "HierarchyConfig",
    "InputError",
    "IssuedCertificate",
    "KeyError_",
    "KeySpec",
    "LocalKey",
    "NotFoundError",
    "OcppVersion",
    "OcppsecError",
    "PolicyError",
    "Profile",
    "SignatureError",
    "SignatureScheme",
    "SigningKey",
    "StoreError",
    "UsageError",
    "VerificationError",
    "Violation",
    "WrongPassphraseError",
    "build_certificate",
    "certificates_to_pem",
    "default_config_text",
    "generate_key",
    "get_profile",
    "key_spec_of",
    "load_certificate",
    "load_certificates",
    "load_csr",
    "load_key_file",
    "load_key_pem",
    "make_name",
    "name_attributes",
    "name_value",
    "new_serial",
    "sign_builder",
    "write_key_file",
]
