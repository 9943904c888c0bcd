"""x509-limbo through ``ocppsec.pki.chain.verify_chain``: run every case, classify it, render ``docs/limbo.md``.

    python tests/pki/limbo_report.py            # print the summary
    python tests/pki/limbo_report.py --write    # also regenerate docs/limbo.md

Each case goes through our wrapper the way pyca's own limbo harness drives pyca: SERVER cases with
``server_name`` = the expected peer name, CLIENT cases through the client path, the case's validation
time (now when it has none) and max_chain_depth. Limbo's ``max_chain_depth`` counts intermediates
(pyca's meaning); ``verify_chain(max_depth=)`` counts every CA above the leaf, root included, so
``max_depth = max_chain_depth + 1``. Expected key usages and peer names are checked on the leaf after
the path is built; extended key usages are the verifier's (serverAuth for SERVER, clientAuth for CLIENT).

A case is *agree* when our outcome equals limbo's expected one. A differing case is *not applicable*
when it belongs to a class pyca's harness declares unsupported (its skip list and unsupported features,
signature-algorithm or other-EKU restrictions) or is a ``crl::`` case (revocation is checked by
``ocppsec.pki.revocation.crl``, not by path validation); otherwise it is *disagree*. Every differing case gets a
one-line explanation from :data:`EXPLANATIONS`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import cryptography
from cryptography import x509

from ocppsec.pki.chain import verify_chain
from ocppsec.pki.errors import OcppsecError

REPO = Path(__file__).resolve().parents[2]
LIMBO = REPO / "tests" / "vectors" / "x509-limbo" / "limbo.json.gz"
DOC = REPO / "docs" / "limbo.md"

# pyca/cryptography 50.0.2 through its own limbo harness on this machine (same limbo.json.gz).
PYCA_FIGURES = {"agree": 9730, "disagree": 13, "not applicable": 37}

# Classes pyca's harness declares unsupported (feature -> why). A case in one of them that we get
# right still counts as agree; one we get wrong counts as not applicable.
UNSUPPORTED_FEATURES: Mapping[str, str] = {
    "pedantic-public-suffix-wildcard": "wildcards on public suffixes need the Public Suffix List; pyca (like most validators) has none",
    "name-constraint-dn": "pyca does not support directoryName name constraints",
    "pedantic-webpki-eku": "CABF EKU profile rules beyond serverAuth/clientAuth are not enforced by pyca",
    "pedantic-webpki-subscriber-key": "CABF subscriber-key rules are not enforced on the leaf by pyca",
    "pedantic-rfc5280": "strict RFC 5280 reading widely ignored by validators, pyca included",
    "rfc5280-incompatible-with-webpki": "pyca follows CABF where it relaxes RFC 5280",
    "has-policy-constraints": "pyca does not process certificate policies / policyConstraints",
    "has-crl": "revocation: CRLs are checked by ocppsec.pki.revocation.crl, not by path validation",
}
PYCA_SKIPPED_CASES: Mapping[str, str] = {
    "pathlen::self-issued-certs-pathlen": "pyca counts self-issued intermediates towards pathLen (like Go and webpki)",
    "pathlen::max-chain-depth-1-self-issued": "pyca counts self-issued intermediates towards the depth limit",
    "rfc5280::serial::zero": "pyca accepts serial number zero (common in deployed roots)",
    "rfc5280::ski::root-missing-ski": "pyca accepts CAs without subjectKeyIdentifier (like Go and webpki)",
    "rfc5280::ski::intermediate-missing-ski": "pyca accepts CAs without subjectKeyIdentifier (like Go and webpki)",
    "rfc5280::aki::intermediate-missing-aki": "pyca accepts intermediates without authorityKeyIdentifier (like Go and webpki)",
    "webpki::aki::root-with-aki-ski-mismatch": "pyca accepts roots whose AKI differs from their SKI (like Go and webpki)",
    "webpki::forbidden-rsa-not-divisable-by-8-in-root": "pyca accepts RSA moduli not divisible by 8",
    "rfc5280::ca-as-leaf": "pyca refuses a CA certificate in the leaf position (CABF; like webpki and rustls)",
    "pathlen::validation-ignores-pathlen-in-leaf": "pyca refuses a CA certificate in the leaf position (CABF)",
    "pathological::pathological-chain-same-subject-same-key": "not fixed in pyca upstream",
}

# One line per case we differ on (checked by the test: a new difference must be explained here).
EXPLANATIONS: Mapping[str, str] = {
    # -- disagree: CABF certificate-profile rules pyca's verifier does not check (pyca disagrees on the same 13)
    "webpki::aki::root-with-aki-authoritycertissuer":
        "CABF 7.1.2.1.3 forbids authorityCertIssuer in a root's AKI; pyca does not inspect a trust anchor's AKI fields",
    "webpki::aki::root-with-aki-authoritycertserialnumber":
        "CABF 7.1.2.1.3 forbids authorityCertSerialNumber in a root's AKI; pyca does not inspect a trust anchor's AKI fields",
    "webpki::aki::root-with-aki-all-fields":
        "CABF 7.1.2.1.3 root AKI with every optional field; pyca does not inspect a trust anchor's AKI fields",
    "webpki::cn::ipv4-hex-mismatch":
        "CABF BR 7.1.4.3 CN/SAN consistency (hex IPv4 in CN): pyca matches the peer name against the SAN only and ignores the CN",
    "webpki::cn::ipv4-leading-zeros-mismatch":
        "CABF BR 7.1.4.3 CN/SAN consistency (zero-padded IPv4 in CN): pyca ignores the CN when a SAN is present",
    "webpki::cn::ipv6-uppercase-mismatch":
        "CABF BR 7.1.4.3 CN/SAN consistency (upper-case IPv6 in CN): pyca ignores the CN when a SAN is present",
    "webpki::cn::ipv6-uncompressed-mismatch":
        "CABF BR 7.1.4.3 CN/SAN consistency (uncompressed IPv6 in CN): pyca ignores the CN when a SAN is present",
    "webpki::cn::ipv6-non-rfc5952-mismatch":
        "CABF BR 7.1.4.3 CN/SAN consistency (non-RFC 5952 IPv6 in CN): pyca ignores the CN when a SAN is present",
    "webpki::cn::punycode-not-in-san":
        "CABF BR 7.1.4.3 CN must be one of the SAN values: pyca ignores the CN when a SAN is present",
    "webpki::cn::utf8-vs-punycode-mismatch":
        "CABF BR 7.1.4.3 CN must copy the SAN dNSName (UTF-8 vs punycode): pyca ignores the CN when a SAN is present",
    "webpki::cn::not-in-san":
        "CABF BR 7.1.4.3 CN must be one of the SAN values: pyca ignores the CN when a SAN is present",
    "webpki::cn::case-mismatch":
        "CABF BR 7.1.4.3 CN must copy the SAN character for character: pyca ignores the CN when a SAN is present",
    "webpki::forbidden-rsa-not-divisible-by-8-in-root":
        "CABF 6.1.5 RSA modulus divisible by 8 is not checked by pyca (its harness means to skip this case but misspells the id)",
    # -- not applicable: classes pyca's harness skips
    "crl::revoked-certificate-with-crl": "revocation: the leaf is revoked by a CRL; path validation does not read CRLs (ocppsec.pki.revocation.crl does)",
    "crl::crlnumber-missing": "revocation: the CRL lacks cRLNumber; path validation does not read CRLs (ocppsec.pki.revocation.crl does)",
    "crl::crlnumber-critical": "revocation: the CRL marks cRLNumber critical; path validation does not read CRLs (ocppsec.pki.revocation.crl does)",
    "crl::issuer-missing-crlsign": "revocation: CRL issuer without cRLSign; path validation does not read CRLs (ocppsec.pki.revocation.crl does)",
    "crl::issuer-no-keyusage-extension":
        "pyca's CA extension policy requires keyUsage on every CA (CABF), so the CA without keyUsage is refused before any CRL matters",
    "pathlen::validation-ignores-pathlen-in-leaf":
        "a CA certificate (pathLen 0) in the leaf position is refused by pyca's CABF policy, which RFC 5280 would allow",
    "pathlen::self-issued-certs-pathlen":
        "pyca counts the self-issued intermediate towards pathLen (RFC 5280 says not to); same as Go and webpki",
    "pathlen::max-chain-depth-1-self-issued":
        "pyca counts the self-issued intermediate towards the depth limit (RFC 5280 says not to); same as Go and webpki",
    "rfc5280::aki::intermediate-missing-aki": "intermediate without authorityKeyIdentifier is accepted (pyca, Go, webpki)",
    "rfc5280::aki::cross-signed-root-missing-aki": "pedantic RFC 5280: a cross-signed root without AKI is accepted by pyca",
    "rfc5280::nc::permitted-dns-match-noncritical":
        "non-critical nameConstraints are accepted: pyca follows CABF, which allows them, over RFC 5280",
    "rfc5280::nc::permitted-dn-match": "directoryName name constraints are not supported by pyca, so the chain is refused",
    "rfc5280::pc::ica-noncritical-pc": "policyConstraints are not processed by pyca, so its criticality is not checked",
    "rfc5280::serial::zero": "serial number zero is accepted (pyca warns on parsing but validates it)",
    "rfc5280::ski::root-missing-ski": "a root without subjectKeyIdentifier is accepted (pyca, Go, webpki)",
    "rfc5280::ski::intermediate-missing-ski": "an intermediate without subjectKeyIdentifier is accepted (pyca, Go, webpki)",
    "rfc5280::ca-as-leaf": "a CA certificate in the leaf position is refused by pyca's CABF policy, which RFC 5280 would allow",
    "webpki::aki::root-with-aki-ski-mismatch": "a root whose AKI differs from its SKI is accepted (pyca, Go, webpki)",
    "webpki::eku::ee-anyeku": "CABF 7.1.2.7.10 forbids anyExtendedKeyUsage in the leaf; pyca accepts it",
    "webpki::eku::ee-without-eku": "CABF 7.1.2.7.6 requires EKU in the leaf; pyca treats a missing EKU as unrestricted",
    "webpki::eku::root-has-eku": "CABF 7.1.2.1.2 forbids EKU in a root; pyca accepts it",
    "webpki::san::public-suffix-wildcard-san": "wildcard on a public suffix (*.com) needs the Public Suffix List, which pyca does not use",
    "webpki::san::public-suffix-multi-label-wildcard-san": "wildcard on a public suffix (*.co.uk) needs the Public Suffix List",
    "webpki::san::public-suffix-private-namespace-wildcard-san": "wildcard on a private-section public suffix needs the Public Suffix List",
    "webpki::forbidden-p192-leaf": "CABF subscriber keys: a P-192 leaf key is not refused by pyca",
    "webpki::forbidden-dsa-leaf": "CABF subscriber keys: a DSA leaf key is not refused by pyca",
    "webpki::forbidden-weak-rsa-in-leaf": "CABF subscriber keys: an RSA-1024 leaf key is not refused by pyca",
    "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf": "CABF subscriber keys: an RSA-2052 leaf key is not refused by pyca",
}

_KEY_USAGE = {
    "digitalSignature": "digital_signature", "contentCommitment": "content_commitment", "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment", "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
}
_EKU_FOR_KIND = {"SERVER": ([], ["serverAuth"]), "CLIENT": ([], ["clientAuth"])}


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    expected: str  # SUCCESS | FAILURE
    actual: str  # SUCCESS | FAILURE
    detail: str  # our error message (FAILURE) or ""
    unsupported: str | None  # why the case's class is not applicable, or None

    @property
    def agrees(self) -> bool:
        return self.actual == self.expected

    @property
    def status(self) -> str:
        if self.agrees:
            return "agree"
        return "not applicable" if self.unsupported else "disagree"

    @property
    def explanation(self) -> str:
        return EXPLANATIONS.get(self.id) or self.unsupported or f"unexplained ({self.detail or 'validated'})"


def load_cases(path: Path = LIMBO) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    cases: list[dict[str, Any]] = data["testcases"]
    return cases


def unsupported_reason(case: Mapping[str, Any]) -> str | None:
    """Why pyca's harness (and so this one) treats the case's class as not applicable, or None."""
    if case["id"] in PYCA_SKIPPED_CASES:
        return PYCA_SKIPPED_CASES[case["id"]]
    for feature in case.get("features") or ():
        if feature in UNSUPPORTED_FEATURES:
            return UNSUPPORTED_FEATURES[feature]
    if case["id"].startswith("crl::"):
        return UNSUPPORTED_FEATURES["has-crl"]
    if case.get("signature_algorithms"):
        return "signature-algorithm restrictions are not supported (pyca's harness skips them)"
    if (case.get("extended_key_usage") or []) not in _EKU_FOR_KIND.get(case["validation_kind"], ()):
        return "only serverAuth (SERVER) and clientAuth (CLIENT) extended key usages are supported"
    return None


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _leaf_checks(case: Mapping[str, Any], leaf: x509.Certificate) -> str | None:
    """Expected key usages and peer names on the leaf (None when satisfied)."""
    wanted_ku = case.get("key_usage") or []
    if wanted_ku:
        try:
            ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            ku = None  # no keyUsage: unrestricted (RFC 5280 4.2.1.3)
        for name in wanted_ku:
            if ku is not None and not getattr(ku, _KEY_USAGE[name]):
                return f"leaf keyUsage lacks {name}"
    names = case.get("expected_peer_names") or []
    if names:
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return "leaf has no subjectAltName"
        for peer in names:
            kind, value = peer["kind"], peer["value"]
            if kind == "RFC822":
                present = value in san.get_values_for_type(x509.RFC822Name)
            elif kind == "DNS":
                present = value.lower() in (d.lower() for d in san.get_values_for_type(x509.DNSName))
            else:
                present = ip_address(value) in san.get_values_for_type(x509.IPAddress)
            if not present:
                return f"leaf subjectAltName lacks {kind} {value}"
    return None


def evaluate(case: Mapping[str, Any], now: datetime) -> Outcome:
    """Run one limbo case through :func:`verify_chain`."""
    expected = str(case["expected_result"])
    unsupported = unsupported_reason(case)
    at = datetime.fromisoformat(case["validation_time"]) if case.get("validation_time") else now
    depth = case.get("max_chain_depth")
    peer = case.get("expected_peer_name")
    server_name = peer["value"] if case["validation_kind"] == "SERVER" and peer else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyca warns about negative/zero serials while parsing
        try:
            roots = [_load(p) for p in case["trusted_certs"]]
            intermediates = [_load(p) for p in case["untrusted_intermediates"]]
            leaf = _load(case["peer_certificate"])
        except ValueError as exc:
            return Outcome(case["id"], expected, "FAILURE", f"unparsable certificate: {exc}", unsupported)
        try:
            verified = verify_chain(leaf, intermediates, roots, at=at, server_name=server_name,
                                    max_depth=None if depth is None else depth + 1)
        except OcppsecError as exc:
            return Outcome(case["id"], expected, "FAILURE", f"{type(exc).__name__}: {exc}", unsupported)
    problem = _leaf_checks(case, verified.leaf)
    if problem is not None:
        return Outcome(case["id"], expected, "FAILURE", problem, unsupported)
    return Outcome(case["id"], expected, "SUCCESS", "", unsupported)


def run(path: Path = LIMBO, now: datetime | None = None) -> list[Outcome]:
    now = now or datetime.now(UTC)
    return [evaluate(case, now) for case in load_cases(path)]


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    c = Counter(o.status for o in outcomes)
    return {k: c.get(k, 0) for k in ("agree", "disagree", "not applicable")}


def render(outcomes: Sequence[Outcome]) -> str:
    """The whole of docs/limbo.md."""
    c = counts(outcomes)
    in_classes = sum(1 for o in outcomes if o.unsupported)
    lines = [
        "# x509-limbo through `verify_chain`",
        "",
        "Generated by `python tests/pki/limbo_report.py --write` (checked by `tests/pki/test_limbo.py`);",
        f"cryptography {cryptography.__version__}, {len(outcomes)} cases of `tests/vectors/x509-limbo/limbo.json.gz`.",
        "",
        "Every case runs through `ocppsec.pki.chain.verify_chain` as pyca's own limbo harness drives pyca:",
        "SERVER cases with `server_name` = the expected peer name, CLIENT cases through the client path,",
        "the case's validation time and `max_chain_depth` (as `max_depth = max_chain_depth + 1`, since",
        "`max_depth` counts the root too); expected key usages and peer names are checked on the leaf.",
        "",
        "| | ours | pyca 50.0.2, own harness |",
        "|---|---:|---:|",
        f"| agree | {c['agree']} | {PYCA_FIGURES['agree']} |",
        f"| disagree | {c['disagree']} | {PYCA_FIGURES['disagree']} |",
        f"| not applicable | {c['not applicable']} | {PYCA_FIGURES['not applicable']} |",
        "",
        "pyca's figures are the team's run of pyca's harness; applying that harness's rules here gives 9,720 agree,",
        "13 disagree, 37 skipped and the 10 CLIENT cases not run (pyca's harness has no client path; ours agrees on all 10).",
        "",
        f"*Not applicable* = a case we get wrong in a class pyca's harness declares unsupported ({in_classes} cases",
        "are in such classes; those we get right count as agree), or a `crl::` case (revocation is",
        "`ocppsec.pki.revocation.crl`'s job, not path validation's).",
        "",
        "## Cases we differ on",
        "",
        "| case | limbo expects | we say | class | why |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        if not o.agrees:
            lines.append(f"| `{o.id}` | {o.expected} | {o.actual} | {o.status} | {o.explanation} |")
    return "\n".join(lines) + "\n"


def documented_ids(text: str) -> set[str]:
    """The case ids listed in the differences table of docs/limbo.md."""
    return {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"regenerate {DOC.relative_to(REPO)}")
    parser.add_argument("--limbo", type=Path, default=LIMBO)
    args = parser.parse_args(argv)
    outcomes = run(args.limbo)
    print(json.dumps(counts(outcomes)))
    for o in outcomes:
        if not o.agrees:
            print(f"{o.status:15} {o.id}: {o.explanation}")
    if args.write:
        DOC.write_text(render(outcomes), encoding="utf-8")
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
