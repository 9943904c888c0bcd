"""x509-limbo (all 9,780 cases) through ``ocppsec.pki.chain.verify_chain``; docs/limbo.md lists every difference."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ocppsec.pki.chain import verify_chain
from ocppsec.pki.errors import ChainError

from .limbo_report import DOC, EXPLANATIONS, PYCA_FIGURES, counts, documented_ids, evaluate, load_cases, run

NOW = datetime.now(UTC)


@cache
def _cases(path: Path) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in load_cases(path)}


@pytest.fixture
def limbo(vectors: Path) -> Path:
    return vectors / "x509-limbo" / "limbo.json.gz"


def _certs(case: dict[str, Any]) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load = x509.load_pem_x509_certificate
        return (load(case["peer_certificate"].encode()), [load(p.encode()) for p in case["untrusted_intermediates"]],
                [load(p.encode()) for p in case["trusted_certs"]])


def test_limbo_agrees_at_least_as_often_as_pyca(limbo: Path) -> None:
    outcomes = run(limbo, NOW)
    assert len(outcomes) == 9780
    c = counts(outcomes)
    assert c["agree"] >= PYCA_FIGURES["agree"], c
    differing = [o for o in outcomes if not o.agrees]
    unexplained = [o.id for o in differing if o.id not in EXPLANATIONS]
    assert not unexplained, f"explain these in tests/pki/limbo_report.py EXPLANATIONS: {unexplained}"
    # docs/limbo.md is current: it lists exactly the cases we differ on, with today's counts.
    doc = DOC.read_text(encoding="utf-8")
    assert documented_ids(doc) == {o.id for o in differing}, "regenerate with: python tests/pki/limbo_report.py --write"
    assert f"| agree | {c['agree']} |" in doc
    assert f"| disagree | {c['disagree']} |" in doc


def test_agreeing_cases_cover_both_outcomes_and_both_kinds(limbo: Path) -> None:
    """Spot checks in both directions: valid chains validate, invalid ones raise ChainError."""
    cases = _cases(limbo)
    for case_id, expected in [
        ("rfc5280::nc::nc-permits-email-exact", "SUCCESS"),  # CLIENT, clientAuth
        ("rfc5280::nc::nc-permits-email-literal-asterisk-rejects-user", "FAILURE"),  # CLIENT
        ("webpki::cryptographydotio-chain", "SUCCESS"),  # keyUsage digitalSignature expected
        ("webpki::cryptographydotio-chain-missing-intermediate", "FAILURE"),
        ("rfc5280::eku::ee-wrong-eku", "FAILURE"),
    ]:
        outcome = evaluate(cases[case_id], NOW)
        assert (outcome.actual, outcome.status) == (expected, "agree"), (case_id, outcome.detail)


def test_max_chain_depth_maps_to_max_depth(limbo: Path) -> None:
    cases = _cases(limbo)
    ok = cases["pathlen::max-chain-depth-1"]
    leaf, intermediates, roots = _certs(ok)
    at = datetime.fromisoformat(ok["validation_time"]) if ok["validation_time"] else NOW
    assert verify_chain(leaf, intermediates, roots, at=at, max_depth=2, server_name="example.com").depth == 2
    with pytest.raises(ChainError):
        verify_chain(leaf, intermediates, roots, at=at, max_depth=1, server_name="example.com")
    bad = cases["pathlen::max-chain-depth-1-exhausted"]
    leaf, intermediates, roots = _certs(bad)
    with pytest.raises(ChainError):
        verify_chain(leaf, intermediates, roots, at=at, max_depth=2, server_name="example.com")


def test_invalid_server_name_is_a_chain_error_not_a_crash(limbo: Path) -> None:
    case = _cases(limbo)["rfc5280::san::underscore-dns"]
    leaf, intermediates, roots = _certs(case)
    at = datetime.fromisoformat(case["validation_time"]) if case["validation_time"] else NOW
    with pytest.raises(ChainError, match="not a valid DNS name"):
        verify_chain(leaf, intermediates, roots, at=at, server_name="foo_bar.example.com")


def test_malformed_issuer_key_is_a_chain_error_not_a_crash(limbo: Path) -> None:
    case = _cases(limbo)["invalid::invalid-issuer-key"]
    leaf, intermediates, roots = _certs(case)
    with pytest.raises(ChainError, match="malformed public key"):
        verify_chain(leaf, intermediates, roots, at=NOW, server_name="example.com")
