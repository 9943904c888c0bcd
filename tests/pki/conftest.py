"""Fixtures of the PKI library tests: in-memory hierarchies (ISO 15118-20 twins with P-521 and with Ed448)
and the generated negative corpus, each built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocppsec.pki import Hierarchy

from .corpus import AT, Factory, iso20_config, write_corpus


@pytest.fixture(scope="session")
def factory() -> Factory:
    return Factory(AT)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory, factory: Factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, factory)
    return out


@pytest.fixture(scope="session")
def h521() -> Hierarchy:
    """Every default hierarchy plus the -20 twins on P-521 / ecdsa-with-SHA512."""
    return Hierarchy.build(iso20_config("p521"), at=AT)


@pytest.fixture(scope="session")
def h448() -> Hierarchy:
    """Every default hierarchy plus the -20 twins on Ed448."""
    return Hierarchy.build(iso20_config("ed448"), at=AT)


@pytest.fixture(params=["p521", "ed448"])
def hierarchy(request: pytest.FixtureRequest, h521: Hierarchy, h448: Hierarchy) -> Hierarchy:
    return h521 if request.param == "p521" else h448
