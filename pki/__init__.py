"""PKI core of ocppsec: profiles, CSR policy, issuance, ledger, validation, CertificateHashData.

This package is also the foundation of the others: the root error (:class:`OcppsecError`), the OCPP
version enum (:class:`OcppVersion`) and the key / store interfaces live here.
"""

from ocppsec.pki.builder import CertificateRequest, build_certificate, new_serial, sign_builder
from ocppsec.pki.chain import VerifiedChain, order_chain, verify_chain, verify_issued_chain
from ocppsec.pki.csr import CsrReport, PolicyContext, check_csr, make_csr, verify_csr
from ocppsec.pki.directory import IssueResult, PkiDirectory, default_leaf_profile
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
from ocppsec.pki.hashdata import (
    CertificateHashData,
    CertificateHashDataChain,
    compute_hash_data,
    find_matching,
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
from ocppsec.pki.ledger import CertificateRecord, Ledger, SqliteLedger
from ocppsec.pki.lint import LintReport, guess_profile, lint_certificate, verify_profile
from ocppsec.pki.names import make_name, name_attributes, name_value
from ocppsec.pki.pem import certificates_to_pem, load_certificate, load_certificates, load_csr
from ocppsec.pki.profiles import PROFILES, CnKind, Family, Profile, get_profile
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "PROFILES",
    "BackendError",
    "CertificateAuthority",
    "CertificateHashData",
    "CertificateHashDataChain",
    "CertificateRecord",
    "CertificateRequest",
    "ChainError",
    "CnKind",
    "CsrReport",
    "DuplicateError",
    "Family",
    "Hierarchy",
    "HierarchyConfig",
    "InputError",
    "IssueResult",
    "IssuedCertificate",
    "KeyError_",
    "KeySpec",
    "Ledger",
    "LintReport",
    "LocalKey",
    "NotFoundError",
    "OcppVersion",
    "OcppsecError",
    "PkiDirectory",
    "PolicyContext",
    "PolicyError",
    "Profile",
    "SignatureError",
    "SignatureScheme",
    "SigningKey",
    "SqliteLedger",
    "StoreError",
    "UsageError",
    "VerificationError",
    "VerifiedChain",
    "Violation",
    "WrongPassphraseError",
    "build_certificate",
    "certificates_to_pem",
    "check_csr",
    "compute_hash_data",
    "default_config_text",
    "default_leaf_profile",
    "find_matching",
    "generate_key",
    "get_profile",
    "guess_profile",
    "key_spec_of",
    "lint_certificate",
    "load_certificate",
    "load_certificates",
    "load_csr",
    "load_key_file",
    "load_key_pem",
    "make_csr",
    "make_name",
    "name_attributes",
    "name_value",
    "new_serial",
    "order_chain",
    "sign_builder",
    "verify_chain",
    "verify_csr",
    "verify_issued_chain",
    "verify_profile",
    "write_key_file",
]
