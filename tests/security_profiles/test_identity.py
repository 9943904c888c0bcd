from __future__ import annotations

import pytest

from ocppsec.pki.errors import InputError
from ocppsec.security_profiles.identity import identity_from_path, identity_url, validate_identity


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("/CS-1", "/", "CS-1"),
        ("/RDAM%7C123", "/", "RDAM|123"),
        ("/ocpp/CS-1", "/ocpp", "CS-1"),
        ("/ocpp/CS-1?x=1", "/ocpp/", "CS-1"),
        ("/" + "A" * 48, "/", "A" * 48),
        ("/%C3%A9t%C3%A9", "/", "été"),
        ("/a%20b~%7E", "/", "a b~~"),  # space and '~' (0x20, 0x7E) are not control characters
    ],
)
def test_identity_from_path(path: str, base: str, expected: str) -> None:
    assert identity_from_path(path, base) == expected


@pytest.mark.parametrize(
    "path",
    ["/", "/" + "A" * 49, "/a%3Ab", "/a:b", "/a/b", "/other/CS-1", "/%FF", "/a%2Fb", "/a%00", "/a%1F", "/a%0A", "/a%7F"],
)
def test_bad_identities_are_refused(path: str) -> None:
    with pytest.raises(InputError):
        identity_from_path(path, "/" if not path.startswith("/other") else "/ocpp")


def test_identity_url_percent_encodes() -> None:
    assert identity_url("wss://csms.example.com/ocpp/", "RDAM|123") == "wss://csms.example.com/ocpp/RDAM%7C123"
    assert identity_from_path("/ocpp/RDAM%7C123", "/ocpp") == "RDAM|123"
    with pytest.raises(InputError, match=r"colon|':'"):
        validate_identity("a:b")
