"""Chain validation (ocppsec.pki.chain): pyca's verifier for ECDSA/RSA, the fallback walker for Ed448."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ocppsec.pki import (
    ChainError,
    Hierarchy,
    InputError,
    get_profile,
    order_chain,
    verify_chain,
    verify_issued_chain,
)

from .corpus import AT, issuer_hash, make_key
from .helpers import LEAVES, issue


def make_cert(cn: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *, ca: bool,
              path_len: int | None = None, serial: int = 1 << 70) -> x509.Certificate:
    """A plain RFC 5280 certificate (CA or leaf), for shapes the hierarchy never builds."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ku = x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                       key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject if issuer else subject)
         .public_key(key.public_key()).serial_number(serial).not_valid_before(AT).not_valid_after(AT + timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True).add_extension(ku, critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer.public_key() if issuer else key.public_key()), critical=False))  # type: ignore[arg-type]
    return b.sign(issuer_key, issuer_hash(issuer_key))


@pytest.mark.parametrize("profile", sorted(LEAVES))
def test_good_chains_of_every_hierarchy(hierarchy: Hierarchy, profile: str) -> None:
    leaf = issue(hierarchy, profile)
    p = get_profile(profile)
    cn = leaf.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    verified = verify_issued_chain(leaf.chain, [leaf.root], at=AT, max_depth=p.max_chain_depth, expected_cn=str(cn))
    assert verified.chain == (*leaf.chain, leaf.root)
    assert verified.leaf == leaf.certificate and verified.root == leaf.root
    assert verified.depth == len(leaf.sub_cas) + 1
    # the sub-CAs may also be given in any order to verify_chain (path building)
    assert verify_chain(leaf.certificate, list(reversed(leaf.sub_cas)), [leaf.root], at=AT).chain == verified.chain
    # the last second of validity is still valid; the one after is not
    last = min(c.not_valid_after_utc for c in verified.chain)
    verify_chain(leaf.certificate, leaf.sub_cas, [leaf.root], at=last)


@pytest.mark.parametrize("profile", ["charging-station", "secc", "secc-20", "contract-20"])
def test_expired_and_not_yet_valid(hierarchy: Hierarchy, profile: str) -> None:
    leaf = issue(hierarchy, profile)
    with pytest.raises(ChainError, match="has expired"):
        verify_issued_chain(leaf.chain, [leaf.root], at=leaf.certificate.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(ChainError, match="not yet valid"):
        verify_issued_chain(leaf.chain, [leaf.root], at=AT - timedelta(seconds=1))
    # a leaf issued later than its CAs: valid CAs, future leaf (ghost certificate, 201ERR25 §2.9)
    ghost = issue(hierarchy, profile, at=AT + timedelta(days=1))
    with pytest.raises(ChainError, match="not yet valid"):
        verify_issued_chain(ghost.chain, [ghost.root], at=AT + timedelta(hours=1))


@pytest.mark.parametrize("profile", ["secc", "secc-20"])
def test_wrong_order_and_root_inside_are_refused(hierarchy: Hierarchy, profile: str) -> None:
    leaf = issue(hierarchy, profile)
    secc, sub2, sub1 = leaf.chain
    with pytest.raises(InputError, match="out of order"):
        verify_issued_chain([secc, sub1, sub2], [leaf.root], at=AT)
    with pytest.raises(InputError, match="out of order"):
        verify_issued_chain([sub2, secc, sub1], [leaf.root], at=AT)
    with pytest.raises(InputError, match="out of order"):
        order_chain([secc, sub1])
    with pytest.raises(InputError, match="self-signed root"):
        verify_issued_chain([*leaf.chain, leaf.root], [leaf.root], at=AT)
    with pytest.raises(InputError, match="empty"):
        verify_issued_chain([], [leaf.root], at=AT)
    assert order_chain(leaf.chain) == list(leaf.chain)


@pytest.mark.parametrize("profile", ["charging-station", "secc", "secc-20", "oem-provisioning-20"])
def test_untrusted_root(h521: Hierarchy, h448: Hierarchy, hierarchy: Hierarchy, profile: str) -> None:
    leaf = issue(hierarchy, profile)
    other = h448 if hierarchy is h521 else h521
    stranger = other.ca(LEAVES[profile][0]).root
    with pytest.raises(ChainError, match=r"does not chain to a trusted root|no path"):
        verify_issued_chain(leaf.chain, [stranger], at=AT)
    with pytest.raises(ChainError, match="no trust anchor"):
        verify_issued_chain(leaf.chain, [], at=AT)
    if leaf.sub_cas:  # a missing sub-CA is a broken path too
        with pytest.raises(ChainError):
            verify_chain(leaf.certificate, leaf.sub_cas[1:], [leaf.root], at=AT)


@pytest.mark.parametrize("spec", ["p256", "ed448"])
def test_path_length_constraint_is_enforced(spec: str) -> None:
    """Sub-CA 2 (pathLen 0) issuing another CA: the leaf below that CA must not validate."""
    root_key, sub1_key, sub2_key, rogue_key, leaf_key = (make_key(spec) for _ in range(5))
    root = make_cert("Root", root_key, None, root_key, ca=True)
    sub1 = make_cert("Sub-CA 1", sub1_key, root, root_key, ca=True, path_len=1)
    sub2 = make_cert("Sub-CA 2", sub2_key, sub1, sub1_key, ca=True, path_len=0)
    rogue = make_cert("Rogue CA", rogue_key, sub2, sub2_key, ca=True, path_len=None)
    leaf = make_cert("Leaf", leaf_key, rogue, rogue_key, ca=False)
    good = make_cert("Good leaf", leaf_key, sub2, sub2_key, ca=False)
    assert verify_chain(good, [sub2, sub1], [root], at=AT).depth == 3
    with pytest.raises(ChainError):
        verify_chain(leaf, [rogue, sub2, sub1], [root], at=AT)
    # and a leaf certificate cannot act as a CA
    fake = make_cert("Below a leaf", rogue_key, good, leaf_key, ca=False)
    with pytest.raises(ChainError):
        verify_chain(fake, [good, sub2, sub1], [root], at=AT)


@pytest.mark.parametrize("spec", ["p256", "ed448"])
def test_iso15118_depth_limit(spec: str) -> None:
    """V2G2-009: at most root + 2 sub-CAs above the leaf (max_depth=3); three sub-CAs are one too many."""
    keys = [make_key(spec) for _ in range(5)]
    root = make_cert("Root", keys[0], None, keys[0], ca=True)
    cas = [root]
    for n in range(1, 4):
        cas.append(make_cert(f"Sub-CA {n}", keys[n], cas[-1], keys[n - 1], ca=True))
    leaf = make_cert("Leaf", keys[4], cas[-1], keys[3], ca=False)
    three_subs = list(reversed(cas[1:]))
    assert verify_chain(leaf, three_subs, [root], at=AT).depth == 4  # no limit asked
    assert verify_chain(leaf, three_subs, [root], at=AT, max_depth=4).depth == 4
    with pytest.raises(ChainError):
        verify_chain(leaf, three_subs, [root], at=AT, max_depth=3)
    two_subs_leaf = make_cert("Leaf 2", keys[4], cas[2], keys[2], ca=False)
    assert verify_chain(two_subs_leaf, [cas[2], cas[1]], [root], at=AT, max_depth=3).depth == 3


def test_profile_depth_limits_on_real_hierarchies(hierarchy: Hierarchy) -> None:
    secc = issue(hierarchy, "secc-20")
    assert get_profile("secc-20").max_chain_depth == 3
    verify_issued_chain(secc.chain, [secc.root], at=AT, max_depth=3)
    with pytest.raises(ChainError):
        verify_issued_chain(secc.chain, [secc.root], at=AT, max_depth=2)
    fw = issue(hierarchy, "firmware-signing")
    assert verify_issued_chain(fw.chain, [fw.root], at=AT, max_depth=get_profile("firmware-signing").max_chain_depth).depth == 1


def test_cn_checks(h521: Hierarchy) -> None:
    server = h521.issue_leaf("csms-server-ecdsa", ca="csms-root", subject={"O": "Example CSO", "CN": "CSMS.Example.com"}, at=AT)
    verify_chain(server.certificate, [], [server.root], at=AT, expected_cn="csms.example.COM")
    with pytest.raises(ChainError) as exc:
        verify_chain(server.certificate, [], [server.root], at=AT, expected_cn="other.example.com")
    assert exc.value.requirement == "A00.FR.510"
    wild = h521.issue_leaf("csms-server-ecdsa", ca="csms-root", subject={"O": "Example CSO", "CN": "*.example.com"}, at=AT)
    verify_chain(wild.certificate, [], [wild.root], at=AT, expected_cn="csms.example.com", allow_wildcard_cn=True)
    for name in ("csms.example.com", "example.com", "a.b.example.com", "csms.example.org"):
        with pytest.raises(ChainError):
            verify_chain(wild.certificate, [], [wild.root], at=AT, expected_cn=name)
    for name in ("example.com", "a.b.example.com", "csms.example.org", "*.example.com.evil"):
        with pytest.raises(ChainError):
            verify_chain(wild.certificate, [], [wild.root], at=AT, expected_cn=name, allow_wildcard_cn=True)
    station = issue(h521, "charging-station")
    verify_issued_chain(station.chain, [station.root], at=AT, expected_cn="SN-0001")
    with pytest.raises(ChainError):
        verify_issued_chain(station.chain, [station.root], at=AT, expected_cn="SN-0002")


def test_ed448_cn_checks_go_through_the_fallback_walker(h448: Hierarchy) -> None:
    secc = issue(h448, "secc-20")
    verify_issued_chain(secc.chain, [secc.root], at=AT, expected_cn="DE*EXA*E1234567")
    with pytest.raises(ChainError):
        verify_issued_chain(secc.chain, [secc.root], at=AT, expected_cn="DE*EXA*E7654321")


def test_server_name_validation_needs_a_san(h521: Hierarchy) -> None:
    with_san = h521.issue_leaf("csms-server-ecdsa", ca="csms-root", subject={"O": "Example CSO", "CN": "csms.example.com"},
                               at=AT, san_dns=["csms.example.com"])
    verify_chain(with_san.certificate, [], [with_san.root], at=AT, server_name="csms.example.com")
    with pytest.raises(ChainError):
        verify_chain(with_san.certificate, [], [with_san.root], at=AT, server_name="other.example.com")
    no_san = issue(h521, "csms-server-ecdsa", san_dns=())  # issue_leaf names the CN as a SAN unless told not to
    with pytest.raises(ChainError):
        verify_chain(no_san.certificate, [], [no_san.root], at=AT, server_name="csms.example.com")


def test_p521_certificates_under_an_ed448_root() -> None:
    """A mixed -20 path (Ed448 V2G root, P-521 sub-CA and leaf): pyca refuses the Ed448 anchor, the walker takes it."""
    root_key, sub_key, leaf_key = make_key("ed448"), make_key("p521"), make_key("p521")
    root = make_cert("Root", root_key, None, root_key, ca=True)
    sub = make_cert("Sub-CA", sub_key, root, root_key, ca=True, path_len=0)
    leaf = make_cert("Leaf", leaf_key, sub, sub_key, ca=False)
    direct = make_cert("Direct leaf", leaf_key, root, root_key, ca=False)
    assert verify_chain(leaf, [sub], [root], at=AT, max_depth=3).chain == (leaf, sub, root)
    assert verify_chain(direct, [], [root], at=AT).depth == 1
    other_key = make_key("ed448")
    other = make_cert("Root", other_key, None, other_key, ca=True)  # same name, other key
    with pytest.raises(ChainError):
        verify_chain(leaf, [sub], [other], at=AT)
    with pytest.raises(ChainError, match="expired"):
        verify_chain(leaf, [sub], [root], at=AT + timedelta(days=31))
