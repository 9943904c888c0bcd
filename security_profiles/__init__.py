"""Security profiles 1, 2 and 3 for OCPP WebSocket connections, both sides, and the security gateway.

Sans-I/O core: :mod:`.identity`, :mod:`.basic_auth`, :mod:`.profile3`, :mod:`.handshake` (the decision),
:mod:`.upgrade` (A05 state machines). Adapters: :mod:`.tls` (SSL contexts), :mod:`.registry` (the interface,
in memory), :mod:`.registry_sql` (SQLite / PostgreSQL) and :mod:`.registry_snapshot` (in memory for the loop),
:mod:`.server` (``serve``), :mod:`.client` (``connect``), :mod:`.ocpp_glue`, :mod:`.gateway`.
"""

from ocppsec.security_profiles.basic_auth import (
    BasicCredentials,
    PasswordRules,
    ScryptCost,
    authorization_header,
    check_password,
    generate_password,
    hash_password,
    parse_authorization,
    password_matches,
    verify_password_rules,
)
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.handshake import (
    Accept,
    HandshakeFacts,
    Reject,
    ServerPolicy,
    TlsFacts,
    decide,
    parse_profiles,
)
from ocppsec.security_profiles.identity import identity_from_path, identity_url, validate_identity
from ocppsec.security_profiles.profile3 import LeafIdentity, check_station_certificate, verify_station_certificate
from ocppsec.security_profiles.redact import CredentialFilter, install_credential_filter
from ocppsec.security_profiles.registry import (
    MemoryRegistry,
    NetworkProfiles,
    NetworkSlot,
    StationRecord,
    StationRegistry,
    confirm_password,
    discard_pending_password,
    set_pending_password,
)
from ocppsec.security_profiles.registry_sql import SqlRegistry, open_registry
from ocppsec.security_profiles.server import FrameLimits, StationConnection, serve
from ocppsec.security_profiles.tls import (
    MANDATORY_TLS12_SUITES,
    CertChain,
    client_context,
    server_context,
    verify_server_identity,
)

__all__ = [
    "MANDATORY_TLS12_SUITES",
    "Accept",
    "BasicCredentials",
    "CertChain",
    "CredentialFilter",
    "CsmsConnectionError",
    "FrameLimits",
    "HandshakeFacts",
    "LeafIdentity",
    "MemoryRegistry",
    "NetworkProfiles",
    "NetworkSlot",
    "PasswordRules",
    "Reject",
    "ScryptCost",
    "ServerPolicy",
    "SqlRegistry",
    "StationConnection",
    "StationRecord",
    "StationRegistry",
    "TlsFacts",
    "authorization_header",
    "check_password",
    "check_station_certificate",
    "client_context",
    "confirm_password",
    "connect",
    "decide",
    "discard_pending_password",
    "generate_password",
    "hash_password",
    "identity_from_path",
    "identity_url",
    "install_credential_filter",
    "open_registry",
    "parse_authorization",
    "parse_profiles",
    "password_matches",
    "serve",
    "server_context",
    "set_pending_password",
    "validate_identity",
    "verify_password_rules",
    "verify_server_identity",
    "verify_station_certificate",
]
