"""PKI core of ocppsec: profiles, CSR policy, issuance, ledger, validation, CertificateHashData.

This package is also the foundation of the others: the root error (:class:`OcppsecError`), the OCPP
version enum (:class:`OcppVersion`) and the key / store interfaces live here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocppsec.pki.builder import CertificateRequest, CertificateTemplate, build_certificate, new_serial, sign_builder
    from ocppsec.pki.chain import VerifiedChain, order_chain, verify_chain, verify_issued_chain
    from ocppsec.pki.csr import CheckedRequest, CsrReport, PolicyContext, check_csr, make_csr, verify_csr
    from ocppsec.pki.directory import PkiDirectory, default_leaf_profile
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
    from ocppsec.pki.issuance import IssuancePipeline, IssueResult
    from ocppsec.pki.keys import KeySpec, LocalKey, SignatureScheme, SigningKey, generate_key, key_spec_of
    from ocppsec.pki.keys.files import load_key_file, load_key_pem, write_key_file
    from ocppsec.pki.ledger import CertificateRecord, CertificateStatus, Ledger
    from ocppsec.pki.ledger_sql import SqlLedger, open_ledger
    from ocppsec.pki.lint import LintReport, guess_profile, lint_certificate, verify_profile
    from ocppsec.pki.names import make_name, name_attributes, name_value
    from ocppsec.pki.pem import certificates_to_pem, load_certificate, load_certificates, load_csr
    from ocppsec.pki.profiles import PROFILES, CnKind, Family, Profile, get_profile
    from ocppsec.pki.versions import OcppVersion

# Public names are imported on first use: `import ocppsec.pki.errors` (every CLI command does) must not
# pay for the whole PKI core.
_LAZY: dict[str, str] = {
    "BackendError": "ocppsec.pki.errors",
    "CertificateAuthority": "ocppsec.pki.hierarchy",
    "CertificateHashData": "ocppsec.pki.hashdata",
    "CertificateHashDataChain": "ocppsec.pki.hashdata",
    "CertificateRecord": "ocppsec.pki.ledger",
    "CertificateStatus": "ocppsec.pki.ledger",
    "CertificateRequest": "ocppsec.pki.builder",
    "CertificateTemplate": "ocppsec.pki.builder",
    "CheckedRequest": "ocppsec.pki.csr",
    "ChainError": "ocppsec.pki.errors",
    "CnKind": "ocppsec.pki.profiles",
    "CsrReport": "ocppsec.pki.csr",
    "DuplicateError": "ocppsec.pki.errors",
    "Family": "ocppsec.pki.profiles",
    "Hierarchy": "ocppsec.pki.hierarchy",
    "HierarchyConfig": "ocppsec.pki.hierarchy",
    "InputError": "ocppsec.pki.errors",
    "IssuancePipeline": "ocppsec.pki.issuance",
    "IssueResult": "ocppsec.pki.issuance",
    "IssuedCertificate": "ocppsec.pki.hierarchy",
    "KeyError_": "ocppsec.pki.errors",
    "KeySpec": "ocppsec.pki.keys",
    "Ledger": "ocppsec.pki.ledger",
    "LintReport": "ocppsec.pki.lint",
    "LocalKey": "ocppsec.pki.keys",
    "NotFoundError": "ocppsec.pki.errors",
    "OcppVersion": "ocppsec.pki.versions",
    "OcppsecError": "ocppsec.pki.errors",
    "PROFILES": "ocppsec.pki.profiles",
    "PkiDirectory": "ocppsec.pki.directory",
    "PolicyContext": "ocppsec.pki.csr",
    "PolicyError": "ocppsec.pki.errors",
    "Profile": "ocppsec.pki.profiles",
    "SignatureError": "ocppsec.pki.errors",
    "SignatureScheme": "ocppsec.pki.keys",
    "SigningKey": "ocppsec.pki.keys",
    "SqlLedger": "ocppsec.pki.ledger_sql",
    "StoreError": "ocppsec.pki.errors",
    "UsageError": "ocppsec.pki.errors",
    "VerificationError": "ocppsec.pki.errors",
    "VerifiedChain": "ocppsec.pki.chain",
    "Violation": "ocppsec.pki.errors",
    "WrongPassphraseError": "ocppsec.pki.errors",
    "build_certificate": "ocppsec.pki.builder",
    "certificates_to_pem": "ocppsec.pki.pem",
    "check_csr": "ocppsec.pki.csr",
    "compute_hash_data": "ocppsec.pki.hashdata",
    "default_config_text": "ocppsec.pki.hierarchy",
    "default_leaf_profile": "ocppsec.pki.directory",
    "find_matching": "ocppsec.pki.hashdata",
    "generate_key": "ocppsec.pki.keys",
    "get_profile": "ocppsec.pki.profiles",
    "guess_profile": "ocppsec.pki.lint",
    "key_spec_of": "ocppsec.pki.keys",
    "lint_certificate": "ocppsec.pki.lint",
    "load_certificate": "ocppsec.pki.pem",
    "load_certificates": "ocppsec.pki.pem",
    "load_csr": "ocppsec.pki.pem",
    "load_key_file": "ocppsec.pki.keys.files",
    "load_key_pem": "ocppsec.pki.keys.files",
    "make_csr": "ocppsec.pki.csr",
    "make_name": "ocppsec.pki.names",
    "name_attributes": "ocppsec.pki.names",
    "name_value": "ocppsec.pki.names",
    "new_serial": "ocppsec.pki.builder",
    "open_ledger": "ocppsec.pki.ledger_sql",
    "order_chain": "ocppsec.pki.chain",
    "sign_builder": "ocppsec.pki.builder",
    "verify_chain": "ocppsec.pki.chain",
    "verify_csr": "ocppsec.pki.csr",
    "verify_issued_chain": "ocppsec.pki.chain",
    "verify_profile": "ocppsec.pki.lint",
    "write_key_file": "ocppsec.pki.keys.files",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocppsec.pki' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PROFILES",
    "BackendError",
    "CertificateAuthority",
    "CertificateHashData",
    "CertificateHashDataChain",
    "CertificateRecord",
    "CertificateRequest",
    "CertificateStatus",
    "CertificateTemplate",
    "ChainError",
    "CheckedRequest",
    "CnKind",
    "CsrReport",
    "DuplicateError",
    "Family",
    "Hierarchy",
    "HierarchyConfig",
    "InputError",
    "IssuancePipeline",
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
    "SqlLedger",
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
    "open_ledger",
    "order_chain",
    "sign_builder",
    "verify_chain",
    "verify_csr",
    "verify_issued_chain",
    "verify_profile",
    "write_key_file",
]
