"""HTTP Basic authentication for security profiles 1 and 2 (A00.FR.202-207, 301-304, A01).

- :func:`parse_authorization` reads the ``Authorization`` header into :class:`BasicCredentials`.
- :func:`check_password` applies the per-version password rules and returns the list of violations:
  1.6 AuthorizationKey: 16-20 bytes, given as up to 40 hex digits or as literal text; 2.1 and 2.0.1 by
  default as the 2.0.1 Edition 3 errata (2025) have it, like 2.1: 16 to maxLimit (40..64, default 64)
  characters of any UTF-8; ``rules=PasswordRules.EDITION2`` keeps 2.0.1 Edition 2's strict
  passwordString: 16-40 characters of a-z A-Z 0-9 ``* - _ = : + | @ .``.
- :func:`generate_password` makes passwords valid under both rule sets (40 characters of the
  passwordString alphabet by default, which also fits every station's maxLimit).
- Passwords are stored only as salted scrypt hashes (:func:`hash_password`), one per station
  (A01.FR.06-09) and compared in constant time (:func:`password_matches`).
- :func:`candidates` yields what a received password may stand for: for OCPP 1.6 the AuthorizationKey
  may arrive as the hex-decoded raw bytes (OCPP-J 1.6 §6.2.2 example) or as the literal string
  (what many stations send); both are accepted (ADR decision 6).
- :func:`authorization_header` builds the header a station sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from ocppsec.pki.errors import InputError, PolicyError, UsageError, Violation
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "BasicCredentials",
    "PasswordRules",
    "ScryptCost",
    "authorization_header",
    "candidates",
    "check_password",
    "generate_password",
    "hash_password",
    "parse_authorization",
    "password_matches",
    "verify_password_rules",
]

MAX_HEADER = 4096
PASSWORD_STRING_CHARS = frozenset(string.ascii_letters + string.digits + "*-_=:+|@.")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


class PasswordRules(StrEnum):
    """Which rules an OCPP 2.0.1 BasicAuthPassword follows (1.6 and 2.1 have one rule set each).

    ``ERRATA_2025`` (the default): the 2.0.1 Edition 3 errata of 2025, as 2.1 - any UTF-8, 16 to maxLimit
    characters, maxLimit 40..64 (default 64). ``EDITION2``: 2.0.1 Edition 2's passwordString - 16-40
    characters of a-z A-Z 0-9 ``* - _ = : + | @ .``, for a deployment whose stations still enforce it.
    """

    ERRATA_2025 = "errata-2025"
    EDITION2 = "edition2"


def _rules(rules: PasswordRules | str) -> PasswordRules:
    try:
        return PasswordRules(rules)
    except ValueError:
        raise UsageError(f"password rules {rules!r} are not {' or '.join(r.value for r in PasswordRules)}") from None


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """Username and raw password bytes from a Basic header. The password never appears in ``repr``."""

    username: str
    password: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"BasicCredentials(username={self.username!r}, password=<redacted {len(self.password)} bytes>)"


def parse_authorization(header: str | None) -> BasicCredentials:
    """Parse ``Authorization: Basic base64(user:password)``; raise :class:`InputError` when malformed."""
    if header is None:
        raise InputError("no Authorization header", hint="profiles 1 and 2 need HTTP Basic auth",
                         requirement="A00.FR.202")
    if len(header) > MAX_HEADER:
        raise InputError("the Authorization header is too long")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InputError(f"Authorization scheme {scheme[:20]!r} is not Basic", requirement="A00.FR.202")
    token = token.strip()
    if not token:
        raise InputError("the Basic credentials are empty")
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InputError("the Basic credentials are not valid base64") from None
    user, sep, password = raw.partition(b":")
    if not sep:
        raise InputError("the Basic credentials have no ':' between username and password")
    try:
        username = user.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the Basic username is not UTF-8") from None
    return BasicCredentials(username, password)


def authorization_header(identity: str, password: str, version: OcppVersion, *, key_form: str = "hex") -> str:
    """The header value a station sends. For 1.6 ``key_form="hex"`` sends the hex-decoded key bytes
    (OCPP-J 1.6 §6.2.2), ``"string"`` the configured text; 2.0.1 and 2.1 always send UTF-8 text."""
    if version is OcppVersion.V16 and key_form == "hex" and _HEX.match(password):
        secret = bytes.fromhex(password)
    else:
        secret = password.encode("utf-8")
    return "Basic " + base64.b64encode(identity.encode("utf-8") + b":" + secret).decode("ascii")


def check_password(password: str, version: OcppVersion, *, max_length: int | None = None,
                   rules: PasswordRules | str = PasswordRules.ERRATA_2025) -> tuple[Violation, ...]:
    """Every rule ``password`` breaks for ``version`` (empty tuple when it is acceptable).

    ``max_length``: the station's BasicAuthPassword maxLimit (40..64, default 64) where the errata / 2.1
    rules apply. ``rules``: for 2.0.1, the 2025 errata (default) or Edition 2's passwordString
    (:class:`PasswordRules`). The violations never quote the password or any of its characters.
    """
    chosen = _rules(rules)
    out: list[Violation] = []
    if version is OcppVersion.V16:
        if _HEX.match(password):
            n = len(password) // 2
            if not 16 <= n <= 20:
                out.append(Violation("A00.FR.205", f"AuthorizationKey is {n} bytes; it must be 16-20 (32-40 hex digits)"))
        elif not 16 <= len(password.encode("utf-8")) <= 20:
            out.append(Violation("A00.FR.205", "AuthorizationKey must be 16-20 bytes: give 32-40 hex digits"))
        return tuple(out)
    if version is OcppVersion.V201 and chosen is PasswordRules.EDITION2:
        if not 16 <= len(password) <= 40:
            out.append(Violation("A00.FR.205", f"BasicAuthPassword has {len(password)} characters; "
                                               "2.0.1 Edition 2 needs 16-40"))
        if not set(password) <= PASSWORD_STRING_CHARS:
            out.append(Violation("2.0.1 2.1.4 passwordString", "BasicAuthPassword has characters outside "
                                 "a-z A-Z 0-9 * - _ = : + | @ . (2.0.1 Edition 2 passwordString)"))
        return tuple(out)
    limit = 64 if max_length is None else max_length
    if not 40 <= limit <= 64:
        out.append(Violation("A00.FR.205", f"BasicAuthPassword maxLimit {limit} must be between 40 and 64"))
    if not 16 <= len(password) <= limit:
        out.append(Violation("A00.FR.205", f"BasicAuthPassword is {len(password)} characters; it must be 16 to {limit}"))
    return tuple(out)


def verify_password_rules(password: str, version: OcppVersion, *, max_length: int | None = None,
                          rules: PasswordRules | str = PasswordRules.ERRATA_2025) -> None:
    """Raise :class:`PolicyError` listing every rule ``password`` breaks (see :func:`check_password`)."""
    violations = check_password(password, version, max_length=max_length, rules=rules)
    if violations:
        raise PolicyError("the password breaks the OCPP password rules", violations)


def generate_password(version: OcppVersion, length: int = 40, *,
                      rules: PasswordRules | str = PasswordRules.ERRATA_2025) -> str:
    """A random password for ``version`` (1.6: 40 hex digits = 20 random bytes).

    2.0.1 / 2.1: ``length`` characters drawn from the passwordString alphabet without ``:``, so that the
    password is valid under both :class:`PasswordRules`; 16-64 characters (16-40 under ``EDITION2`` for
    2.0.1). The default 40 fits every station, whose maxLimit is at least 40.
    """
    if version is OcppVersion.V16:
        return secrets.token_hex(20).upper()
    longest = 40 if version is OcppVersion.V201 and _rules(rules) is PasswordRules.EDITION2 else 64
    if not 16 <= length <= longest:
        raise UsageError(f"a {version.value} password has 16 to {longest} characters, not {length}")
    alphabet = sorted(PASSWORD_STRING_CHARS - {":"})
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt parameters; the default costs 16 MiB and tens of milliseconds per check."""

    n: int = 2**14
    r: int = 8
    p: int = 1


def hash_password(password: str, *, cost: ScryptCost | None = None, salt: bytes | None = None) -> str:
    """Salted scrypt hash of the UTF-8 password: ``scrypt$n$r$p$salt$hash`` (base64 fields)."""
    c = cost or ScryptCost()
    s = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=s, n=c.n, r=c.r, p=c.p, maxmem=256 * 1024 * 1024, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${c.n}${c.r}${c.p}${b64(s).decode()}${b64(digest).decode()}"


def _digest_for(encoded: str, secret: bytes) -> tuple[bytes, bytes]:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(secret, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(expected))
    except (ValueError, binascii.Error):
        raise InputError("stored password hash is unreadable", hint="set the password again") from None
    return expected, got


def candidates(password: bytes, version: OcppVersion | None) -> Iterator[bytes]:
    """The secrets a received password may stand for, most likely first.

    1.6: the literal text (if it is printable UTF-8), then the raw key re-encoded as hex in upper and
    lower case (when it is 16-20 bytes). 2.0.1 / 2.1 (or unknown): the bytes as sent.
    """
    if version is not OcppVersion.V16:
        yield password
        return
    try:
        if password.decode("utf-8").isprintable():
            yield password
    except UnicodeDecodeError:
        pass
    if 16 <= len(password) <= 20:
        yield password.hex().upper().encode("ascii")
        yield password.hex().encode("ascii")


def password_matches(encoded: str, password: bytes, version: OcppVersion | None = None) -> bool:
    """Whether ``password`` (as received) matches the stored hash; constant-time comparison."""
    matched = False
    for secret in candidates(password, version):
        expected, got = _digest_for(encoded, secret)
        if hmac.compare_digest(expected, got):
            matched = True
            break
    return matched
