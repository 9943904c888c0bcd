"""Certificate path validation: the one module that wraps pyca's ``cryptography.x509.verification``.

pyca's verifier implements RFC 5280 path building and the CA/B-style checks; OCPP and ISO 15118
certificates carry no subjectAltName (identity is the subject CN, A00.FR.510/511), so the end-entity
extension policy here lets SAN be absent, and identity is checked by CN after the path is built.
Ed448 chains (ISO 15118-20) are outside pyca's algorithm set; they are checked by a small RFC 5280
walk in :func:`_verify_eddsa_path` (signature, validity, basicConstraints, pathLen, keyCertSign).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from ipaddress import ip_address

from cryptography import x509
from cryptography.x509 import verification as pyca
from cryptography.x509.oid import PublicKeyAlgorithmOID

from ocppsec.pki.errors import ChainError, InputError
from ocppsec.pki.names import name_value

__all__ = [
    "VerifiedChain",
    "order_chain",
    "verify_chain",
    "verify_issued_chain",
]


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A validated path: leaf first, trust anchor last."""

    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def depth(self) -> int:
        """Number of CA certificates above the leaf (root included)."""
        return len(self.chain) - 1


@cache
def _ee_policy() -> pyca.ExtensionPolicy:
    return pyca.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, pyca.Criticality.AGNOSTIC, None
    )


_stores: dict[tuple[x509.Certificate, ...], pyca.Store] = {}


def _store(roots: Sequence[x509.Certificate]) -> pyca.Store:
    """A pyca Store per set of trust anchors, kept for reuse: a Store parses its roots' keys once."""
    key = tuple(roots)
    store = _stores.get(key)
    if store is None:
        if len(_stores) >= 64:
            _stores.clear()
        store = _stores[key] = pyca.Store(list(roots))
    return store


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _is_eddsa(cert: x509.Certificate) -> bool:
    # By SPKI algorithm OID: no key parsing, and a malformed key is left to the verifier to report.
    return cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.ED448


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    max_depth: int | None = None,
    server_name: str | None = None,
    expected_cn: str | None = None,
    allow_wildcard_cn: bool = False,
    ca_key_usage_optional: bool = False,
) -> VerifiedChain:
    """Validate ``leaf`` up to one of ``roots`` at time ``at``; raise :class:`ChainError` otherwise.

    ``ca_key_usage_optional``: accept CA certificates without keyUsage, as RFC 5280 §4.2.1.3 allows (the
    default web-PKI rule requires it; every OCPP / ISO 15118 CA profile has it). A keyUsage that is
    present must still include keyCertSign.

    ``server_name``: validate as a TLS server certificate for that DNS name/IP (SAN-based, webpki
    rules; used for x509-limbo and for CSMS certificates that do carry a SAN). ``expected_cn``: the
    subject CN must equal it (case-insensitive for FQDNs; ``*.`` wildcards only with
    ``allow_wildcard_cn``). ``max_depth``: the most CA certificates above the leaf, root included.
    """
    if not roots:
        raise ChainError("no trust anchor given", hint="pass the root certificate(s) to trust")
    presented = (leaf, *intermediates)
    # pyca's verifier refuses Ed448 keys anywhere in the path, the trust anchor included: an Ed448 root
    # named as issuer by a presented certificate (e.g. a P-521 sub-CA under an Ed448 V2G root) goes to the walker.
    eddsa_issuer = any(_is_eddsa(r) and any(c.issuer == r.subject for c in presented) for r in roots)
    if eddsa_issuer or any(_is_eddsa(c) for c in presented):
        verified = _verify_eddsa_path(leaf, intermediates, roots, at=at, max_depth=max_depth)
    else:
        builder = pyca.PolicyBuilder().store(_store(roots)).time(at)
        if max_depth is not None:
            builder = builder.max_chain_depth(max(0, max_depth - 1))
        ca_policy = pyca.ExtensionPolicy.webpki_defaults_ca()
        if ca_key_usage_optional:
            ca_policy = ca_policy.may_be_present(x509.KeyUsage, pyca.Criticality.AGNOSTIC, _ca_key_usage)
        try:
            if server_name is not None:
                try:
                    subject: pyca.Subject = x509.IPAddress(ip_address(server_name))
                except ValueError:
                    subject = x509.DNSName(server_name)
                if ca_key_usage_optional:
                    builder = builder.extension_policies(ca_policy=ca_policy, ee_policy=pyca.ExtensionPolicy.webpki_defaults_ee())
                try:
                    verifier = builder.build_server_verifier(subject)
                except ValueError as exc:  # e.g. an underscore in a DNS name
                    raise ChainError(f"server name {server_name!r} is not a valid DNS name or IP address ({exc})") from None
                chain = verifier.verify(leaf, list(intermediates))
            else:
                builder = builder.extension_policies(ca_policy=ca_policy, ee_policy=_ee_policy())
                chain = builder.build_client_verifier().verify(leaf, list(intermediates)).chain
        except pyca.VerificationError as exc:
            raise _explain(leaf, intermediates, roots, at, str(exc), max_depth) from None
        verified = VerifiedChain(tuple(chain))
    if expected_cn is not None:
        check_cn(leaf, expected_cn, allow_wildcard=allow_wildcard_cn)
    return verified


def _ca_key_usage(_policy: object, _cert: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("a CA keyUsage without keyCertSign")


def _top(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The last certificate of the presented path (following issuer names from the leaf)."""
    current, pool = leaf, list(intermediates)
    while True:
        parent = next((c for c in pool if c.subject == current.issuer and c.subject != c.issuer), None)
        if parent is None:
            return current
        pool.remove(parent)
        current = parent


def _explain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
             at: datetime, detail: str, max_depth: int | None = None) -> ChainError:
    """pyca's message in our words, the most likely cause first (pyca's words kept where they add something).

    pyca reports "candidates exhausted: all candidates exhausted with no interior errors" for a chain whose
    issuers are none of the roots, "cert is not valid at validation time" for any certificate of the path,
    "chain construction exceeds max depth", "signature does not match", or an extension rule it enforces."""
    detail = detail.removeprefix("validation failed: ").split(" (encountered processing")[0]
    top = _top(leaf, intermediates)
    for cert in (leaf, *intermediates, *(r for r in roots if r.subject == top.issuer)):
        if at < cert.not_valid_before_utc:
            return ChainError(f"certificate {_describe(cert)} is not yet valid (notBefore "
                              f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ})",
                              hint="check the clock of this host and of the issuing CA")
        if at > cert.not_valid_after_utc:
            return ChainError(f"certificate {_describe(cert)} has expired (notAfter "
                              f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})")
    if "exceeds max depth" in detail:
        allowed = f"the {max_depth} CA level(s) allowed" if max_depth is not None else "the depth allowed"
        return ChainError(f"the path from certificate {_describe(leaf)} to the roots is longer than {allowed}",
                          requirement="V2G2-009" if max_depth is not None else None)
    if "signature does not match" in detail:
        return ChainError(f"no path to the given roots: a signature on the path from certificate {_describe(leaf)} "
                          f"does not verify with its issuer's key (pyca: {detail})",
                          hint="a root or sub-CA with the right name but another key was given, or a certificate "
                               "was altered")
    if "no interior errors" in detail or detail in ("candidates exhausted", "no path to a trusted root"):
        subjects = "; ".join(_describe(r) for r in roots)
        return ChainError(f"no path to the given roots: certificate {_describe(leaf)} does not chain to any of them",
                          hint=f"the chain ends with a certificate issued by {top.issuer.rfc4514_string() or '(empty name)'}; "
                               f"the roots given are: {subjects}")
    return ChainError(f"certificate {_describe(leaf)} does not chain to a trusted root: {detail}")


def check_cn(cert: x509.Certificate, expected: str, *, allow_wildcard: bool = False) -> None:
    """Subject CN must equal ``expected`` (DNS-style case-insensitive; wildcard only when allowed)."""
    cn = name_value(cert.subject, "CN")
    if cn is None:
        raise ChainError(f"certificate {_describe(cert)} has no subject CN", requirement="A00.FR.510")
    if cn.lower() == expected.lower():
        return
    if allow_wildcard and cn.startswith("*.") and "." in expected and expected.split(".", 1)[1].lower() == cn[2:].lower():
        return
    raise ChainError(f"certificate CN {cn!r} does not match the expected {expected!r}", requirement="A00.FR.510")


def _verify_eddsa_path(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
    *, at: datetime, max_depth: int | None,
) -> VerifiedChain:
    pool = list(intermediates)
    chain = [leaf]
    current = leaf
    for _ in range(8):
        for root in roots:
            if root.subject == current.issuer and _signed_by(current, root):
                chain.append(root)
                _check_path(chain, at, max_depth)
                return VerifiedChain(tuple(chain))
        parent = next((c for c in pool if c.subject == current.issuer and _signed_by(current, c)), None)
        if parent is None:
            break
        pool.remove(parent)
        chain.append(parent)
        current = parent
    raise _explain(leaf, intermediates, roots, at, "no path to a trusted root", max_depth)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # InvalidSignature and pyca's ValueError/TypeError
        return False
    return True


def _check_path(chain: list[x509.Certificate], at: datetime, max_depth: int | None) -> None:
    if max_depth is not None and len(chain) - 1 > max_depth:
        raise ChainError(f"chain has {len(chain) - 1} CA levels, more than the allowed {max_depth}", requirement="V2G2-009")
    for n, cert in enumerate(chain):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise _explain(cert, (), chain[-1:], at, "outside its validity period")
        if n == 0:
            continue
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise ChainError(f"CA certificate {_describe(cert)} lacks basicConstraints or keyUsage") from None
        if not bc.ca or not ku.key_cert_sign:
            raise ChainError(f"certificate {_describe(cert)} is not a CA but issued {_describe(chain[n - 1])}")
        below = n - 1  # CA certificates between this one and the leaf
        if bc.path_length is not None and below > bc.path_length:
            raise ChainError(f"pathLenConstraint {bc.path_length} of {_describe(cert)} exceeded")


def order_chain(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Check that ``certs`` is leaf first, each certificate issued by the next; return it as a list."""
    for n in range(len(certs) - 1):
        child, parent = certs[n], certs[n + 1]
        if child.issuer != parent.subject or not _signed_by(child, parent):
            raise InputError(
                f"chain is out of order: certificate {n + 1} ({_describe(child)}) is not issued by "
                f"certificate {n + 2} ({_describe(parent)})",
                hint="send the leaf first, then its issuing sub-CA, then the sub-CA above it",
            )
    return list(certs)


def verify_issued_chain(
    certs: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], *, at: datetime,
    max_depth: int | None = None, expected_cn: str | None = None,
) -> VerifiedChain:
    """Validate a CertificateSigned-style chain: leaf first, then sub-CAs, and no root inside."""
    if not certs:
        raise InputError("the chain is empty")
    for cert in certs:
        if cert.issuer == cert.subject and _signed_by(cert, cert):
            raise InputError(
                f"the chain includes the self-signed root {_describe(cert)}",
                hint="CertificateSigned carries the leaf and sub-CAs only; install roots with InstallCertificate",
            )
    ordered = order_chain(certs)
    return verify_chain(ordered[0], ordered[1:], roots, at=at, max_depth=max_depth, expected_cn=expected_cn)
