from __future__ import annotations

import base64

import pytest

from ocppsec.pki.errors import InputError, PolicyError, UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import (
    PASSWORD_STRING_CHARS,
    PasswordRules,
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
ERRATA, EDITION2 = PasswordRules.ERRATA_2025, PasswordRules.EDITION2


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


PRINTABLE = "Pa$$w0rd!#%&'()/<>?[]^`{}~ ,;\"\\"  # printable ASCII outside passwordString


@pytest.mark.parametrize(
    ("password", "version", "ok"),
    [
        ("A" * 16, V201, True),
        ("A" * 40, V201, True),
        ("A" * 64, V201, True),  # the 2025 errata: up to maxLimit, at most 64
        ("A" * 15, V201, False),
        ("A" * 65, V201, False),
        ("x" * 64, V21, True),
        ("x" * 65, V21, False),
        ("secret-with-a-bang!", V201, True),
        (PRINTABLE, V201, True),
        (PRINTABLE, V21, True),
        ("pässwort-pässwort", V201, True),  # any UTF-8
        ("pässwort-pässwort", V21, True),
        (KEY_16, V16, True),
        ("00" * 15, V16, False),
        ("00" * 21, V16, False),
    ],
)
def test_password_rules_by_default_follow_the_errata(password: str, version: OcppVersion, ok: bool) -> None:
    assert (check_password(password, version) == ()) is ok
    assert (check_password(password, version, rules=ERRATA) == ()) is ok
    if ok:
        verify_password_rules(password, version)
    else:
        with pytest.raises(PolicyError):
            verify_password_rules(password, version)


@pytest.mark.parametrize(
    ("password", "violations"),
    [
        ("A" * 16, []),
        ("A" * 40, []),
        ("aZ09*-_=:+|@." * 3, []),  # every passwordString character class, 39 characters
        ("A" * 41, ["A00.FR.205"]),
        ("A" * 15, ["A00.FR.205"]),
        ("secret-with-a-bang!", ["2.0.1 2.1.4 passwordString"]),
        ("pässwort-pässwort", ["2.0.1 2.1.4 passwordString"]),
        ("with space inside it", ["2.0.1 2.1.4 passwordString"]),
        ("!" * 41, ["A00.FR.205", "2.0.1 2.1.4 passwordString"]),
    ],
)
def test_strict_edition2_rules_for_2_0_1(password: str, violations: list[str]) -> None:
    assert [v.requirement for v in check_password(password, V201, rules=EDITION2)] == violations
    assert [v.requirement for v in check_password(password, V201, rules="edition2")] == violations
    if 16 <= len(password) <= 64:
        assert check_password(password, V201) == ()  # what Edition 2 refuses for its characters, the errata accept


def test_edition2_concerns_2_0_1_only() -> None:
    """2.1 has its own rules (no character set, up to 64); 1.6 its AuthorizationKey rules."""
    assert check_password("secret-with-a-bang!" + "x" * 40, V21, rules=EDITION2) == ()
    assert check_password("0123456789abcde!", V16, rules=EDITION2) == ()


def test_violations_never_quote_the_password() -> None:
    password = "Zq!" * 14  # 42 characters, "!" outside passwordString
    for version, rules in ((V201, EDITION2), (V201, ERRATA), (V21, ERRATA)):
        violations = check_password(password + "x" * 30, version, rules=rules)
        assert violations
        for violation in violations:
            assert "Zq" not in violation.message and "!" not in violation.message
    with pytest.raises(PolicyError) as err:
        verify_password_rules(password, V201, rules=EDITION2)
    assert "Zq" not in str(err.value) and "!" not in str(err.value)


def test_max_length_is_the_stations_max_limit() -> None:
    assert check_password("x" * 50, V21, max_length=40)[0].requirement == "A00.FR.205"
    assert check_password("x" * 50, V201, max_length=50) == ()
    assert check_password("x" * 30, V201, max_length=70)[0].message.startswith("BasicAuthPassword maxLimit 70")


def test_unknown_rules_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="errata-2025 or edition2"):
        check_password("x" * 20, V201, rules="edition1")


@pytest.mark.parametrize("rules", [ERRATA, EDITION2])
@pytest.mark.parametrize(
    ("key", "ok"),
    [
        (KEY_16, True),  # 40 hex digits: 20 bytes
        (KEY_16[:32], True),  # 32 hex digits: 16 bytes
        ("00" * 15, False),  # 15 bytes
        ("00" * 21, False),  # 21 bytes
        ("0123456789abcde!", True),  # not hex: the literal text, 16 bytes
        ("a-literal-key-of-21-b", False),  # 21 bytes of text
        ("short-key-15-by", False),
    ],
)
def test_1_6_authorization_key_forms_unchanged(rules: PasswordRules, key: str, ok: bool) -> None:
    assert (check_password(key, V16, rules=rules) == ()) is ok


@pytest.mark.parametrize("rules", [ERRATA, EDITION2])
def test_1_6_key_sent_hex_decoded_or_literal_matches_under_both_rules(rules: PasswordRules) -> None:
    stored = hash_password(KEY_16, cost=FAST)
    assert check_password(KEY_16, V16, rules=rules) == ()
    for form in ("hex", "string"):
        received = parse_authorization(authorization_header("AL1000", KEY_16, V16, key_form=form)).password
        assert password_matches(stored, received, V16)


@pytest.mark.parametrize("version", [V16, V201, V21])
@pytest.mark.parametrize("length", [16, 40])
def test_generated_passwords_are_valid_under_both_rule_sets(version: OcppVersion, length: int) -> None:
    for rules in (ERRATA, EDITION2):
        password = generate_password(version, length, rules=rules)
        assert check_password(password, version, rules=ERRATA) == ()
        assert check_password(password, version, rules=EDITION2) == ()
        if version is not V16:
            assert len(password) == length and set(password) <= PASSWORD_STRING_CHARS - {":"}
    assert generate_password(version) != generate_password(version)


def test_generated_password_lengths() -> None:
    assert len(generate_password(V201, 64)) == 64  # the errata allow up to 64
    assert len(generate_password(V21, 64, rules=EDITION2)) == 64  # Edition 2 is a 2.0.1 rule set
    assert len(generate_password(V16, 64)) == 40  # 1.6: always 20 random bytes as hex
    for version, length, rules in ((V201, 41, EDITION2), (V201, 65, ERRATA), (V21, 15, ERRATA)):
        with pytest.raises(UsageError):
            generate_password(version, length, rules=rules)


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
