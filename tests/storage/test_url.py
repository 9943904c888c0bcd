"""One parser for every store's path or URL; one redactor; every factory refuses unknown schemes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocppsec.pki.errors import UsageError
from ocppsec.pki.storage import Dialect, StoreUrl, parse_url, redact

from .stores import KINDS


@pytest.mark.parametrize(("spec", "dialect", "target"), [
    ("ledger.db", Dialect.SQLITE, "ledger.db"),
    ("./dir/events.db", Dialect.SQLITE, "./dir/events.db"),
    ("/abs/x.db", Dialect.SQLITE, "/abs/x.db"),
    ("sqlite:///abs/x.db", Dialect.SQLITE, "/abs/x.db"),
    ("sqlite://rel/x.db", Dialect.SQLITE, "rel/x.db"),
    (":memory:", Dialect.SQLITE, ":memory:"),
    ("postgresql://ca@db.example/pki", Dialect.POSTGRES, "postgresql://ca@db.example/pki"),
    ("postgres://ca@db.example/pki", Dialect.POSTGRES, "postgres://ca@db.example/pki"),
    ("POSTGRESQL://ca@h/db", Dialect.POSTGRES, "POSTGRESQL://ca@h/db"),
])
def test_accepted_forms(spec: str, dialect: Dialect, target: str) -> None:
    url = parse_url(spec)
    assert (url.dialect, url.target, url.read_only) == (dialect, target, False)
    assert parse_url(url) is url


def test_paths_and_options() -> None:
    assert parse_url(Path("a:/b.db")) == StoreUrl(Dialect.SQLITE, "a:/b.db")  # a Path is a file name, whatever it says
    url = parse_url("sqlite:///x.db?mode=ro&timeout=2.5")
    assert (url.read_only, url.timeout, url.path) == (True, 2.5, Path("/x.db"))
    assert parse_url(":memory:").path is None and parse_url("postgresql://h/db").path is None


@pytest.mark.parametrize(("spec", "message"), [
    ("mysql://root@localhost/ocppsec", "unsupported ledger URL mysql://"),
    ("https://example.com/ledger.db", "unsupported ledger URL https://"),
    ("sqlite://", "names no file"),
    ("sqlite:///x.db?journal=off", "unknown ledger URL option journal=off"),
    ("sqlite:///x.db?timeout=soon", "timeout 'soon'"),
    ("  ", "no ledger given"),
])
def test_refused(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_url(spec, what="ledger")
    assert info.value.exit_code == 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_factory_refuses_an_unknown_scheme(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"unsupported .* URL mysql://") as info:
        KINDS[kind].open("mysql://root:hunter2@localhost/ocppsec")
    assert "postgresql://" in (info.value.hint or "") and "hunter2" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no SQLite file called "mysql:" appeared


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ca:s3cret@db.example:5432/pki", "postgresql://ca:***@db.example:5432/pki"),
    ("postgresql://ca@db.example/pki", "postgresql://ca@db.example/pki"),
    ("postgresql:///pki?host=/run/pg&password=s3cret&sslmode=require", "postgresql:///pki?host=/run/pg&password=***&sslmode=require"),
    ("postgres://:s3cret@h/db", "postgres://:***@h/db"),
    ("/var/lib/ocppsec/ledger.db", "/var/lib/ocppsec/ledger.db"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    parsed = parse_url(url)
    assert parsed.location == shown and "s3cret" not in repr(parsed) and "s3cret" not in str(parsed)
