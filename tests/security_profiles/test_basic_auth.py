from __future__ import annotations

import base64

import pytest

from ocppsec.pki.errors import InputError, PolicyError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import (
    authorization_header,
    check_password,
    generate_password,
    hash_password,
    parse_authorization,
    password_matches,
    verify_password_rules,
)

from .conftest import FAST, KEY_16

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


def test_ocpp16_spec_example_header() -> None:
    # OCPP-J 1.6 §6.2.2: the hex AuthorizationKey is decoded to 20 raw bytes before base64.
    assert authorization_header("AL1000", KEY_16, V16) == "Basic QUwxMDAwOgABAgMEBQYH////////////////"
    assert authorization_header("AL1000", KEY_16, V16, key_form="string") == (
        "Basic " + base64.b64encode(b"AL1000:" + KEY_16.encode()).decode()
    )


def test_1_6_key_accepted_as_raw_bytes_and_as_literal_string() -> None:
    stored = hash_password(KEY_16, cost=FAST)
    raw = parse_authorization(authorization_header("AL1000", KEY_16, V16)).password
    literal = parse_authorization(authorization_header("AL1000", KEY_16, V16, key_form="string")).password
    assert raw == bytes.fromhex(KEY_16)
    assert password_matches(stored, raw, V16)
    assert password_matches(stored, literal, V16)
    # a 2.0.1 connection must send the text form: raw bytes are not accepted there
    assert not password_matches(stored, raw, V201)
    assert password_matches(stored, literal, V201)
    assert not password_matches(stored, bytes.fromhex(KEY_16)[:-1] + b"\x00", V16)


def test_lowercase_hex_key_matches_raw_bytes() -> None:
    stored = hash_password(KEY_16.lower(), cost=FAST)
    assert password_matches(stored, bytes.fromhex(KEY_16), V16)


def test_2_0_1_password_is_utf8_and_case_sensitive() -> None:
    stored = hash_password("Secret-Password-0001", cost=FAST)
    assert password_matches(stored, b"Secret-Password-0001", V201)
    assert not password_matches(stored, b"secret-password-0001", V201)


def test_2_1_password_any_utf8_up_to_64() -> None:
    pw = "pässwörd-mit-ümläuten-" + "x" * 30
    stored = hash_password(pw, cost=FAST)
    assert password_matches(stored, pw.encode(), V21)
    assert check_password(pw, V21) == ()
    assert check_password("x" * 65, V21)[0].requirement == "A00.FR.205"
    assert check_password("x" * 50, V21, max_length=40)


def test_hashes_are_salted() -> None:
    assert hash_password("same-password-123", cost=FAST) != hash_password("same-password-123", cost=FAST)
    assert hash_password("same-password-123").startswith("scrypt$16384$8$1$")


@pytest.mark.parametrize(
    ("password", "version", "ok"),
    [
        ("A" * 16, V201, True),
        ("A" * 40, V201, True),
        ("A" * 15, V201, False),
        ("A" * 41, V201, False),
        ("pässwort-pässwort", V201, False),  # outside the 2.0.1 passwordString charset
        ("pässwort-pässwort", V21, True),
        (KEY_16, V16, True),
        ("00" * 15, V16, False),
        ("00" * 21, V16, False),
    ],
)
def test_password_rules(password: str, version: OcppVersion, ok: bool) -> None:
    assert (check_password(password, version) == ()) is ok
    if not ok:
        with pytest.raises(PolicyError):
            verify_password_rules(password, version)


def test_2025_errata_relax_2_0_1() -> None:
    assert check_password("pässwort-pässwort-" + "y" * 40, V201, errata_2025=True) == ()


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_generated_passwords_follow_the_rules(version: OcppVersion) -> None:
    assert check_password(generate_password(version), version) == ()


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
     "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), "Basic " + "A" * 5000],
)
def test_malformed_headers(header: str | None) -> None:
    with pytest.raises(InputError):
        parse_authorization(header)


def test_password_not_in_repr() -> None:
    creds = parse_authorization(authorization_header("CS-1", "very-secret-password", V201))
    assert creds.username == "CS-1"
    assert "very-secret" not in repr(creds)
