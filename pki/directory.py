"""The on-disk PKI: a directory with the ledger, CA certificates and (encrypted) key files.

Layout of ``DIR``::

    DIR/ledger.db              SQLite ledger (every issued certificate)
    DIR/ledger.url             instead of ledger.db: the postgresql:// URL of a ledger shared by CSMS nodes (0600)
    DIR/hierarchy.toml         the configuration the directory was built from
    DIR/certs/<name>.pem       CA and named certificates
    DIR/keys/<name>.key.pem    PKCS#8 keys, mode 0600, encrypted unless built with --no-encrypt

``init`` is resumable: every entity is written key first (atomically), then recorded in the ledger in
one transaction, so a kill leaves either a complete entity or none (an orphan key file is overwritten on
the next run). Issuance from CSRs goes through an :class:`~ocppsec.pki.issuance.IssuancePipeline` per CA
and profile (:meth:`PkiDirectory.pipeline`), which records each certificate before returning it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.builder import new_serial
from ocppsec.pki.csr import PolicyContext
from ocppsec.pki.errors import DuplicateError, UsageError
from ocppsec.pki.hierarchy import (
    CertificateAuthority,
    HierarchyConfig,
    PlannedEntity,
    make_root,
    request_for,
)
from ocppsec.pki.issuance import IssuancePipeline, IssueResult
from ocppsec.pki.keys import LocalKey, PrivateKey, SigningKey, generate_key
from ocppsec.pki.keys.files import atomic_write, load_key_file, write_key_file
from ocppsec.pki.ledger import Ledger, record_for
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.pki.profiles import PROFILES, Profile, get_profile
from ocppsec.pki.storage import Dialect, parse_url

__all__ = ["IssueResult", "PkiDirectory", "default_leaf_profile", "open_signing_key"]

LEDGER_FILE = "ledger.db"
LEDGER_URL_FILE = "ledger.url"
CONFIG_FILE = "hierarchy.toml"


def open_signing_key(key_ref: str, base: Path, passphrase: bytes | None) -> SigningKey:
    """Open the key a ledger row points at: ``file:<relative path>`` or a ``pkcs11:`` URI."""
    if key_ref.startswith("pkcs11:"):
        import importlib

        backend = importlib.import_module("ocppsec.pki.keys.pkcs11")  # needs python-pkcs11 (extra "hsm")
        key: SigningKey = backend.open_pkcs11_key(key_ref)
        return key
    if key_ref.startswith("file:"):
        return load_key_file(base / key_ref[5:], passphrase)
    raise UsageError(f"unknown key reference {key_ref!r} in the ledger")


def _open_dir_ledger(root: Path) -> Ledger:
    """``DIR/ledger.url`` names a shared ledger; otherwise the SQLite file ``DIR/ledger.db``."""
    url_file = root / LEDGER_URL_FILE
    if url_file.is_file():
        return open_ledger(url_file.read_text().strip())
    return open_ledger(root / LEDGER_FILE)


def _require_shared_ledger(url: str) -> None:
    """``ledger_url`` must name a PostgreSQL database (a SQLite ledger is ``DIR/ledger.db`` itself)."""
    if parse_url(url, what="ledger").dialect is not Dialect.POSTGRES:
        raise UsageError(f"not a ledger URL: {url!r}", hint="use postgresql://user@host/database")


def default_leaf_profile(ca_profile: Profile) -> Profile:
    """The end-entity profile a CA issues by default (stations for the CSMS root, SECC for CPO Sub-CA 2...)."""
    preferred = ("charging-station", "secc", "secc-20", "contract", "contract-20", "oem-provisioning",
                 "oem-provisioning-20", "cps-leaf", "cps-leaf-20", "firmware-signing")
    for name in preferred:
        if ca_profile.name in PROFILES[name].issuers:
            return PROFILES[name]
    raise UsageError(
        f"CA profile {ca_profile.name} issues no end-entity certificates directly",
        hint="name the profile with --profile",
    )


class PkiDirectory:
    """A PKI directory opened for use. Keys are loaded lazily with the passphrase given at open."""

    def __init__(self, path: Path, config: HierarchyConfig, ledger: Ledger, passphrase: bytes | None) -> None:
        self.path = path
        self.config = config
        self.ledger = ledger
        self._passphrase = passphrase
        self._cas: dict[str, CertificateAuthority] = {}

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def init(
        cls, path: Path | str, config: HierarchyConfig, *, passphrase: bytes | None, at: datetime,
        ca_keys: Mapping[str, str] | None = None, ledger_url: str | None = None,
    ) -> PkiDirectory:
        """Build (or complete) every CA and certificate of ``config`` in ``path``.

        ``ca_keys`` maps entity names to existing ``pkcs11:`` key URIs to use instead of new key files.
        ``ledger_url``: a ``postgresql://`` URL to keep the ledger in (recorded in ``DIR/ledger.url``).
        """
        root = Path(path)
        plan = config.plan()
        root.mkdir(parents=True, exist_ok=True)
        (root / "certs").mkdir(exist_ok=True)
        (root / "keys").mkdir(mode=0o700, exist_ok=True)
        os.chmod(root / "keys", 0o700)
        config_path = root / CONFIG_FILE
        if not config_path.exists():
            atomic_write(config_path, config.to_toml().encode(), 0o644)
        if ledger_url is not None:
            _require_shared_ledger(ledger_url)
            atomic_write(root / LEDGER_URL_FILE, ledger_url.encode() + b"\n", 0o600)
        ledger = _open_dir_ledger(root)
        pki = cls(root, HierarchyConfig.from_bytes(config_path.read_bytes(), what=str(config_path)), ledger, passphrase)
        plan = pki.config.plan()
        external = dict(ca_keys or {})
        held = [r.key_ref for r in ledger.all() if r.key_ref and r.key_ref.startswith("file:")]
        if held and any(ledger.get_named(e.name) is None for e in plan):
            # Resuming: prove the passphrase on a key already held before writing anything, so a wrong one
            # raises WrongPassphraseError with nothing new in the ledger (not after building more roots).
            open_signing_key(held[0], root, passphrase)
        for folder in ("keys", "certs"):  # temporaries of writes cut short by a kill
            for stale in (root / folder).glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        for entity in plan:
            if ledger.get_named(entity.name) is not None:
                continue
            pki._build_entity(entity, at, external.get(entity.name))
        return pki

    def _build_entity(self, e: PlannedEntity, at: datetime, key_uri: str | None) -> None:
        if key_uri is not None:
            key: SigningKey = open_signing_key(key_uri, self.path, None)
            key_ref = key_uri
        else:
            private = generate_key(e.key)
            rel = f"keys/{e.name}.key.pem"
            write_key_file(self.path / rel, private, self._passphrase)
            key = LocalKey(private, e.name)
            key_ref = "file:" + rel
        for _attempt in range(3):
            serial = new_serial()
            if e.issuer is None:
                ca = make_root(e, key, at, serial)
                cert = ca.certificate
                issuer_name = e.name
            else:
                parent = self.ca(e.issuer)
                cert = parent.issue(request_for(e, key, at, serial)).certificate
                issuer_name = e.issuer
            record = record_for(cert, issuer_ca=issuer_name, role=e.profile.name, issued_at=at, name=e.name,
                                key_ref=key_ref)
            atomic_write(self.path / "certs" / f"{e.name}.pem", cert.public_bytes(Encoding.PEM), 0o644)
            try:
                self.ledger.add([record])
            except DuplicateError:
                if self.ledger.get_named(e.name) is not None:
                    raise
                continue  # serial clash (astronomically unlikely): new serial
            return
        raise DuplicateError(f"could not find a free serial for {e.name}")

    @classmethod
    def open(cls, path: Path | str, passphrase: bytes | None = None, ledger_url: str | None = None) -> PkiDirectory:
        """Open an existing directory; ``ledger_url`` overrides where its ledger lives (else ``DIR/ledger.url``)."""
        root = Path(path)
        if ledger_url is not None:
            _require_shared_ledger(ledger_url)
            config = HierarchyConfig.from_bytes((root / CONFIG_FILE).read_bytes(), what=str(root / CONFIG_FILE))
            return cls(root, config, open_ledger(ledger_url), passphrase)
        if not (root / LEDGER_FILE).is_file() and not (root / LEDGER_URL_FILE).is_file():
            raise UsageError(f"{root} is not an ocppsec PKI directory (no {LEDGER_FILE})",
                             hint=f"create one with `ocppsec pki init {root}`")
        config = HierarchyConfig.from_bytes((root / CONFIG_FILE).read_bytes(), what=str(root / CONFIG_FILE))
        return cls(root, config, _open_dir_ledger(root), passphrase)

    def close(self) -> None:
        self.ledger.close()

    # -- CAs --------------------------------------------------------------------------------------
    def ca(self, name: str) -> CertificateAuthority:
        """The CA called ``name``, its key opened (wrong passphrase → WrongPassphraseError)."""
        if name in self._cas:
            return self._cas[name]
        rec = self.ledger.get_named(name)
        if rec is None or not rec.is_ca:
            cas = [r.name for r in self.ledger.all() if r.is_ca and r.name]
            raise UsageError(f"no CA named {name!r} in {self.path}", hint="CAs: " + ", ".join(str(c) for c in cas))
        if rec.key_ref is None:
            raise UsageError(f"the key of CA {name} is not held by this PKI directory")
        key = open_signing_key(rec.key_ref, self.path, self._passphrase)
        cert = rec.certificate()
        profile = get_profile(rec.role)
        if rec.issuer_ca == name:
            ca = CertificateAuthority(name, profile, cert, key)
        else:
            parent = self.ca(rec.issuer_ca)
            ca = parent.child(name, profile, cert, key)
        self._cas[name] = ca
        return ca

    def ca_certificate(self, name: str) -> x509.Certificate:
        rec = self.ledger.get_named(name)
        if rec is None:
            raise UsageError(f"no certificate named {name!r} in {self.path}")
        return rec.certificate()

    def chain_of(self, name: str) -> list[x509.Certificate]:
        """The named certificate followed by its issuers up to (including) the root."""
        out: list[x509.Certificate] = []
        current = self.ledger.get_named(name)
        while current is not None:
            out.append(current.certificate())
            if current.name is not None and current.issuer_ca == current.name:
                break
            current = self.ledger.get_named(current.issuer_ca)
        return out

    def policy_context(self, **overrides: str | None) -> PolicyContext:
        net = self.config.network
        return PolicyContext(cso_name=overrides.get("cso_name") or net.get("cso_name"),
                             expected_cn=overrides.get("expected_cn"))

    # -- issuing ----------------------------------------------------------------------------------
    def pipeline(
        self, ca: str, profile: Profile | None = None, *, ctx: PolicyContext | None = None,
        validity_days: int | None = None, backdate: timedelta = timedelta(0),
    ) -> IssuancePipeline:
        """The issuance pipeline of CA ``ca`` for ``profile`` (default: what the CA issues), recording into the
        directory's ledger, with the network's OCSP and CRL URLs and its CSO name as the policy default."""
        authority = self.ca(ca)
        network = self.config.network
        return IssuancePipeline(
            authority, profile or default_leaf_profile(authority.profile), ledger=self.ledger,
            context=ctx or self.policy_context(), validity_days=validity_days, backdate=backdate,
            ocsp_url=network.get("ocsp_url", "").replace("{issuer}", ca) or None,
            crl_url=network.get("crl_url", "").replace("{issuer}", ca) or None,
        )

    def issue_from_csr(
        self, csr: x509.CertificateSigningRequest, *, ca: str, at: datetime, profile: Profile | None = None,
        ctx: PolicyContext | None = None, validity_days: int | None = None, station: str | None = None,
    ) -> IssueResult:
        """Check the CSR under the policy, sign it, record it, and return the chain (CertificateSigned form)."""
        return self.pipeline(ca, profile, ctx=ctx, validity_days=validity_days).issue_one(csr, at=at, station=station)

    def issue_many(
        self, csrs: Sequence[x509.CertificateSigningRequest], *, ca: str, at: datetime, profile: Profile | None = None,
        ctx: PolicyContext | None = None, validity_days: int | None = None, station: str | None = None,
    ) -> list[IssueResult]:
        """Issue a batch: every CSR must pass; all records are committed in one transaction."""
        return self.pipeline(ca, profile, ctx=ctx, validity_days=validity_days).issue_many(csrs, at=at, station=station)

    def trust_roots(self) -> list[x509.Certificate]:
        return [r.certificate() for r in self.ledger.all() if r.is_ca and r.name == r.issuer_ca]


    # -- keys held by the directory (OCSP responders, new roots) ---------------------------------------
    def store_key(self, name: str, private: PrivateKey) -> str:
        """Write ``keys/<name>.key.pem`` (0600, encrypted with the directory passphrase); return its key_ref."""
        rel = f"keys/{name}.key.pem"
        write_key_file(self.path / rel, private, self._passphrase)
        return "file:" + rel

    def signing_key(self, key_ref: str) -> SigningKey:
        """Open the key a ledger row points at, with the passphrase the directory was opened with."""
        return open_signing_key(key_ref, self.path, self._passphrase)
