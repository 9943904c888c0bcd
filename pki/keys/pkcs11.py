"""PKCS#11 key backend (python-pkcs11): token-held keys behind the :class:`SigningKey` interface.

Keys are named by RFC 7512 URIs, subset: ``pkcs11:token=<label>;object=<label>;id=<%xx bytes>`` plus
the query attributes ``pin-value``, ``pin-source`` (a file holding the PIN) and ``module-path``.

- PIN: the ``pin`` argument, else ``pin-value`` / ``pin-source`` in the URI, else ``OCPPSEC_PKCS11_PIN``.
- Module: the ``module`` argument, else ``module-path`` in the URI, else ``OCPPSEC_PKCS11_MODULE``, else
  the SoftHSM2 default :data:`DEFAULT_MODULE`.

A :class:`Pkcs11Key` is a :class:`~ocppsec.pki.keys.SigningKey` (``sign``, and ``sign_digest`` for
streamed firmware images) and gives pyca's builders a private-key object of its own,
:attr:`Pkcs11Key.private_key`: a subclass of ``ec.EllipticCurvePrivateKey`` / ``rsa.RSAPrivateKey``
(:mod:`ocppsec.pki.keys.delegated`) whose ``sign()`` calls the token, so certificates, CSRs, CRLs and
OCSP responses are signed in the token through pyca's own builders.

Mechanisms (every message is hashed on the host; SoftHSM2 has no CKM_ECDSA_SHA256): ECDSA signs the
digest with CKM_ECDSA and turns the raw ``r||s`` into DER; PKCS#1 v1.5 signs a DigestInfo with
CKM_RSA_PKCS; RSA-PSS uses CKM_RSA_PKCS_PSS over the digest with the hash, MGF1 hash and salt length
pyca asks for (``MAX_LENGTH``: the length pyca writes into the AlgorithmIdentifier).

A login is per token and per process in PKCS#11, so sessions are shared per (module, token) and kept
until :func:`close_sessions`; a different PIN for a token that is already logged in is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import PSS, PKCS1v15

from ocppsec.pki.errors import BackendError, KeyError_, UsageError, WrongPassphraseError
from ocppsec.pki.keys import KeySpec, PrivateKey, PublicKey, SignatureScheme, describe_public_key, pss_padding
from ocppsec.pki.keys.delegated import (
    DelegatedEcKey,
    DelegatedRsaKey,
    SignHash,
    message_digest,
    pss_mgf_hash,
    pss_salt_length,
)

__all__ = [
    "DEFAULT_MODULE",
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11Key",
    "Pkcs11Uri",
    "close_sessions",
    "generate_pkcs11_key",
    "is_pkcs11_uri",
    "open_pkcs11_key",
    "parse_pkcs11_uri",
]

PIN_ENV = "OCPPSEC_PKCS11_PIN"
MODULE_ENV = "OCPPSEC_PKCS11_MODULE"
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

_PATH_ATTRS = {"token", "object", "id", "type"}
_QUERY_ATTRS = {"pin-value", "pin-source", "module-path"}

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for CKM_RSA_PKCS over a precomputed digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def is_pkcs11_uri(text: str) -> bool:
    return text.strip().lower().startswith("pkcs11:")


@dataclass(frozen=True, slots=True, repr=False)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI that ocppsec uses. The PIN never appears in ``str``/``repr``."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    pin_value: str | None = field(default=None, compare=False)
    pin_source: str | None = None
    module_path: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.token is not None:
            parts.append(f"token={self.token}")
        if self.object is not None:
            parts.append(f"object={self.object}")
        if self.id is not None:
            parts.append("id=" + "".join(f"%{b:02x}" for b in self.id))
        return "pkcs11:" + ";".join(parts)

    def __repr__(self) -> str:
        return f"Pkcs11Uri({str(self)!r})"


def _decode(value: str, what: str) -> bytes:
    try:
        return unquote_to_bytes(value)
    except Exception:  # unquote_to_bytes is lenient; keep the guard for odd input
        raise UsageError(f"PKCS#11 URI: cannot decode {what}") from None


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parse ``pkcs11:token=...;object=...;id=%01?pin-value=...``; unknown attributes are refused."""
    text = uri.strip()
    if not is_pkcs11_uri(text):
        raise UsageError(f"not a PKCS#11 URI: {text[:40]!r}", hint="write it as pkcs11:token=LABEL;object=LABEL")
    body = text[len("pkcs11:"):]
    path, _, query = body.partition("?")
    values: dict[str, bytes] = {}
    for section, allowed, sep in ((path, _PATH_ATTRS, ";"), (query, _QUERY_ATTRS, "&")):
        for item in filter(None, section.split(sep)):
            name, eq, raw = item.partition("=")
            name = name.strip().lower()
            if not eq:
                raise UsageError(f"PKCS#11 URI attribute {name!r} has no value")
            if name not in allowed:
                supported = "token, object, id (path) and pin-value, pin-source, module-path (query)"
                raise UsageError(f"PKCS#11 URI attribute {name!r} is not supported here", hint=f"supported: {supported}")
            if name in values:
                raise UsageError(f"PKCS#11 URI attribute {name!r} appears twice")
            values[name] = _decode(raw, name)
    if "type" in values and values["type"] not in (b"private", b"public"):
        raise UsageError("PKCS#11 URI: type must be 'private' for a signing key")

    def text_of(name: str) -> str | None:
        v = values.get(name)
        if v is None:
            return None
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"PKCS#11 URI attribute {name} is not UTF-8") from None

    return Pkcs11Uri(
        token=text_of("token"), object=text_of("object"), id=values.get("id"),
        pin_value=text_of("pin-value"), pin_source=text_of("pin-source"), module_path=text_of("module-path"),
    )


def _resolve_pin(uri: Pkcs11Uri, pin: str | None) -> str:
    if pin is not None:
        return pin
    if uri.pin_value is not None:
        return uri.pin_value
    if uri.pin_source is not None:
        source = uri.pin_source.removeprefix("file://").removeprefix("file:")
        try:
            return Path(source).read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read the PIN from pin-source {source}: {exc.strerror}") from None
    env = os.environ.get(PIN_ENV)
    if env:
        return env
    raise UsageError("no PIN for the PKCS#11 token", hint=f"set {PIN_ENV} (or pin-value/pin-source in the URI)")


def _resolve_module(uri: Pkcs11Uri, module: str | None) -> str:
    path = module or uri.module_path or os.environ.get(MODULE_ENV) or DEFAULT_MODULE
    if not Path(path).is_file():
        raise UsageError(
            f"PKCS#11 module {path} not found",
            hint=f"install the module (e.g. Debian softhsm2) or set {MODULE_ENV} to its path",
        )
    return path


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise UsageError(
            "the PKCS#11 backend needs python-pkcs11", hint="pip install 'ocppsec[hsm]'"
        ) from None
    return pkcs11


@dataclass
class _Login:
    session: Any
    pin_check: bytes


_SALT = secrets.token_bytes(16)
_sessions: dict[tuple[str, bytes], _Login] = {}
_lock = threading.RLock()


def _pin_check(pin: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), _SALT, 1000)


def _describe_tokens(lib: Any) -> str:
    try:
        labels = [t.label for t in lib.get_tokens() if t.label]
    except Exception:  # listing is best effort, for the message only
        return "unknown"
    return ", ".join(repr(x) for x in labels) or "none"


def _session(uri: Pkcs11Uri, pin: str | None, module: str | None) -> tuple[Any, str]:
    """A logged-in read/write session on the URI's token, and the token label."""
    p11 = _pkcs11()
    module_path = _resolve_module(uri, module)
    secret = _resolve_pin(uri, pin)
    with _lock:
        try:
            lib = p11.lib(module_path)
        except p11.PKCS11Error as exc:
            raise BackendError(f"cannot load PKCS#11 module {module_path}: {exc}") from None
        try:
            if uri.token is not None:
                token = lib.get_token(token_label=uri.token)
            else:
                tokens = [t for t in lib.get_tokens() if t.label]
                if len(tokens) != 1:
                    raise UsageError(
                        f"the PKCS#11 URI names no token and the module has {len(tokens)} initialised tokens",
                        hint="add token=LABEL to the URI",
                    )
                token = tokens[0]
        except p11.NoSuchToken:
            raise KeyError_(
                f"no PKCS#11 token labelled {uri.token!r} in {module_path} (tokens: {_describe_tokens(lib)})",
                hint="check token= in the URI, or initialise the token (softhsm2-util --init-token)",
            ) from None
        except p11.MultipleTokensReturned:
            raise UsageError(f"several PKCS#11 tokens are labelled {uri.token!r}") from None
        except p11.PKCS11Error as exc:
            raise BackendError(f"PKCS#11 module {module_path} failed listing tokens: {exc!r}") from None
        key = (module_path, token.serial + b"\x00" + token.label.encode())
        check = _pin_check(secret)
        login = _sessions.get(key)
        if login is not None:
            if not hmac.compare_digest(login.pin_check, check):
                raise WrongPassphraseError(f"wrong PIN for PKCS#11 token {token.label!r}", hint=f"check {PIN_ENV}")
            return login.session, token.label
        try:
            session = token.open(rw=True, user_pin=secret)
        except p11.PinIncorrect:
            raise WrongPassphraseError(
                f"wrong PIN for PKCS#11 token {token.label!r}", hint=f"check {PIN_ENV} or pin-value in the URI"
            ) from None
        except (p11.PinLocked, p11.PinExpired) as exc:
            raise KeyError_(f"the PIN of PKCS#11 token {token.label!r} is {type(exc).__name__[3:].lower()}") from None
        except p11.PinLenRange:
            raise WrongPassphraseError(f"wrong PIN for PKCS#11 token {token.label!r} (bad length)") from None
        except p11.PKCS11Error as exc:
            raise BackendError(f"cannot log in to PKCS#11 token {token.label!r}: {exc!r}") from None
        _sessions[key] = _Login(session, check)
        return session, token.label


def close_sessions() -> None:
    """Log out and close every cached session (e.g. before switching SoftHSM2 configurations)."""
    with _lock:
        for login in _sessions.values():
            with contextlib.suppress(Exception):  # closing is best effort
                login.session.close()
        _sessions.clear()
        try:
            import pkcs11
        except ImportError:
            return
        for path in list(getattr(pkcs11, "_loaded", {})):
            pkcs11.unload(path)


def _public_key_of(p11: Any, pub: Any) -> PublicKey:
    if pub.key_type == p11.KeyType.EC:
        der = p11.util.ec.encode_ec_public_key(pub)
        return serialization.load_der_public_key(der)  # type: ignore[return-value]
    if pub.key_type == p11.KeyType.RSA:
        n = int.from_bytes(pub[p11.Attribute.MODULUS], "big")
        e = int.from_bytes(pub[p11.Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    raise KeyError_(f"PKCS#11 key type {pub.key_type!r} is not supported (use EC or RSA keys)")


def _find(session: Any, p11: Any, object_class: Any, uri: Pkcs11Uri) -> Any:
    query: dict[str, Any] = {"object_class": object_class}
    if uri.object is not None:
        query["label"] = uri.object
    if uri.id is not None:
        query["id"] = uri.id
    return session.get_key(**query)


class Pkcs11Key:
    """A private key that stays in a PKCS#11 token; signs through the token."""

    def __init__(self, session: Any, private: Any, public: PublicKey, uri: Pkcs11Uri) -> None:
        self._session = session
        self._private = private
        self._public = public
        self._uri = uri
        self._pyca: PrivateKey | None = None

    @property
    def label(self) -> str:
        return str(self._uri)

    @property
    def uri(self) -> Pkcs11Uri:
        return self._uri

    def __repr__(self) -> str:
        return f"Pkcs11Key({describe_public_key(self._public)}, {self.label!r})"

    def public_key(self) -> PublicKey:
        return self._public

    @property
    def private_key(self) -> PrivateKey:
        """The key as a pyca private-key object whose ``sign()`` signs in the token (for pyca's builders)."""
        if self._pyca is None:
            if isinstance(self._public, ec.EllipticCurvePublicKey):
                self._pyca = _TokenEcKey(self, self._public)
            elif isinstance(self._public, rsa.RSAPublicKey):
                self._pyca = _TokenRsaKey(self, self._public)
            else:  # _public_key_of admits EC and RSA keys only
                raise KeyError_(f"the {describe_public_key(self._public)} key {self.label} cannot sign")
        return self._pyca

    def token_sign(self, data: bytes, mechanism: Any, param: Any = None) -> bytes:
        """One C_Sign with ``mechanism`` (a python-pkcs11 ``Mechanism``) over ``data``, as the token returns it."""
        p11 = _pkcs11()
        try:
            with _lock:
                if param is None:
                    return bytes(self._private.sign(data, mechanism=mechanism))
                return bytes(self._private.sign(data, mechanism=mechanism, mechanism_param=param))
        except p11.PKCS11Error as exc:
            raise BackendError(f"PKCS#11 signing with {self.label} failed: {exc!r}") from None

    def _padding_for(self, scheme: SignatureScheme) -> tuple[PKCS1v15 | PSS | None, hashes.HashAlgorithm]:
        """The RSA padding (None: ECDSA) and the hash of ``scheme``, checked against the key type."""
        h = scheme.hash_algorithm
        if h is not None:
            if scheme.is_ecdsa and isinstance(self._public, ec.EllipticCurvePublicKey):
                return None, h
            if isinstance(self._public, rsa.RSAPublicKey):
                if scheme is SignatureScheme.RSA_PSS_SHA256:
                    return pss_padding(), h
                if scheme in (SignatureScheme.RSA_PKCS1V15_SHA256, SignatureScheme.RSA_PKCS1V15_SHA384):
                    return PKCS1v15(), h
        raise KeyError_(
            f"the {describe_public_key(self._public)} key {self.label} cannot sign with {scheme.value}",
            hint="choose a scheme that matches the key type",
        )

    def _sign_with(self, data: bytes, scheme: SignatureScheme, *, prehashed: bool) -> bytes:
        """Sign through :attr:`private_key`, as pyca's builders do."""
        pad, h = self._padding_for(scheme)
        algorithm: SignHash = utils.Prehashed(h) if prehashed else h
        key = self.private_key
        if pad is None:
            assert isinstance(key, ec.EllipticCurvePrivateKey)  # _padding_for checked the key type
            return key.sign(data, ec.ECDSA(algorithm))
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, pad, algorithm)

    def sign_digest(self, digest: bytes, scheme: SignatureScheme) -> bytes:
        """Sign a digest made with ``scheme``'s hash (ECDSA -> DER; PSS; PKCS#1 v1.5 via DigestInfo)."""
        h = scheme.hash_algorithm
        if h is None or len(digest) != h.digest_size:
            raise UsageError(f"a {scheme.value} digest has {h.digest_size if h else '?'} bytes, got {len(digest)}")
        return self._sign_with(digest, scheme, prehashed=True)

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        """Sign a message (SigningKey protocol)."""
        return self._sign_with(data, scheme, prehashed=False)


_HASH_NAMES = ("sha256", "sha384", "sha512")


def _mechanism_for_hash(p11: Any, h: hashes.HashAlgorithm, what: str) -> tuple[Any, Any]:
    """The python-pkcs11 ``Mechanism`` and ``MGF`` members of a hash (for CKM_RSA_PKCS_PSS parameters)."""
    if h.name not in _HASH_NAMES:
        raise KeyError_(f"the PKCS#11 backend cannot sign with {what} {h.name}", hint="use SHA-256, SHA-384 or SHA-512")
    member = h.name.upper()
    return getattr(p11.Mechanism, member), getattr(p11.MGF, member)


class _TokenEcKey(DelegatedEcKey):
    """An EC key in the token as a pyca key: CKM_ECDSA over the host digest, raw ``r||s`` turned into DER."""

    def __init__(self, key: Pkcs11Key, public: ec.EllipticCurvePublicKey) -> None:
        super().__init__(public, key.label)
        self._key = key

    def _sign_ecdsa(self, data: bytes, algorithm: SignHash) -> bytes:
        digest, _ = message_digest(data, algorithm)
        raw = self._key.token_sign(digest, _pkcs11().Mechanism.ECDSA)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


class _TokenRsaKey(DelegatedRsaKey):
    """An RSA key in the token as a pyca key: CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS over the digest."""

    def __init__(self, key: Pkcs11Key, public: rsa.RSAPublicKey) -> None:
        super().__init__(public, key.label)
        self._key = key

    def _sign_rsa(self, data: bytes, pad: PKCS1v15 | PSS, algorithm: SignHash) -> bytes:
        p11 = _pkcs11()
        digest, h = message_digest(data, algorithm)
        if isinstance(pad, PSS):
            mechanism, _ = _mechanism_for_hash(p11, h, "RSA-PSS over")
            _, mgf = _mechanism_for_hash(p11, pss_mgf_hash(pad), "RSA-PSS with MGF1 over")
            salt = pss_salt_length(pad, self._public, h)
            return self._key.token_sign(digest, p11.Mechanism.RSA_PKCS_PSS, (mechanism, mgf, salt))
        prefix = _DIGEST_INFO.get(h.name)
        if prefix is None:
            raise KeyError_(f"the PKCS#11 backend cannot sign PKCS#1 v1.5 with {h.name}", hint="use SHA-256, SHA-384 or SHA-512")
        return self._key.token_sign(prefix + digest, p11.Mechanism.RSA_PKCS)


def open_pkcs11_key(uri: str, *, pin: str | None = None, module: str | None = None) -> Pkcs11Key:
    """Open the private key an RFC 7512 URI names (``pkcs11:token=ocppsec;object=fw-signing``)."""
    parsed = parse_pkcs11_uri(uri)
    if parsed.object is None and parsed.id is None:
        raise UsageError("the PKCS#11 URI names no key", hint="add object=LABEL (or id=%01...) to the URI")
    p11 = _pkcs11()
    session, token_label = _session(parsed, pin, module)
    named = f"object={parsed.object!r}" if parsed.object is not None else f"id={parsed.id!r}"
    try:
        with _lock:
            private = _find(session, p11, p11.ObjectClass.PRIVATE_KEY, parsed)
            public = _find(session, p11, p11.ObjectClass.PUBLIC_KEY, parsed)
    except p11.NoSuchKey:
        raise KeyError_(
            f"no key pair with {named} in PKCS#11 token {token_label!r}",
            hint="check object= in the URI, or create the key (ocppsec pki ... --key pkcs11:...)",
        ) from None
    except p11.MultipleObjectsReturned:
        raise UsageError(f"several keys match {named} in token {token_label!r}", hint="add id=... to the URI") from None
    except p11.PKCS11Error as exc:
        raise BackendError(f"PKCS#11 key lookup in token {token_label!r} failed: {exc!r}") from None
    full = Pkcs11Uri(token=token_label, object=parsed.object, id=parsed.id)
    return Pkcs11Key(session, private, _public_key_of(p11, public), full)


_EC_OIDS = {KeySpec.P256: "secp256r1", KeySpec.P384: "secp384r1", KeySpec.P521: "secp521r1"}


def generate_pkcs11_key(uri: str, spec: KeySpec, *, pin: str | None = None, module: str | None = None) -> Pkcs11Key:
    """Create a key pair in the token, labelled with the URI's ``object`` (non-extractable, sensitive)."""
    parsed = parse_pkcs11_uri(uri)
    if parsed.object is None:
        raise UsageError("the PKCS#11 URI needs object=LABEL to name the new key")
    p11 = _pkcs11()
    session, token_label = _session(parsed, pin, module)
    key_id = parsed.id if parsed.id is not None else secrets.token_bytes(8)
    with _lock:
        try:
            _find(session, p11, p11.ObjectClass.PRIVATE_KEY, Pkcs11Uri(object=parsed.object))
        except p11.NoSuchKey:
            pass
        except p11.MultipleObjectsReturned:
            raise UsageError(f"token {token_label!r} already holds keys labelled {parsed.object!r}") from None
        else:
            raise UsageError(
                f"token {token_label!r} already holds a key labelled {parsed.object!r}",
                hint="choose another object= label (keys are never overwritten)",
            )
        private_template = {p11.Attribute.SENSITIVE: True, p11.Attribute.EXTRACTABLE: False,
                            p11.Attribute.SIGN: True, p11.Attribute.TOKEN: True, p11.Attribute.PRIVATE: True}
        public_template = {p11.Attribute.VERIFY: True, p11.Attribute.TOKEN: True}
        try:
            if spec.is_rsa:
                pub, priv = session.generate_keypair(
                    p11.KeyType.RSA, int(spec.value[3:]), store=True, label=parsed.object, id=key_id,
                    public_template=public_template, private_template=private_template,
                )
            elif spec in _EC_OIDS:
                params = session.create_domain_parameters(
                    p11.KeyType.EC,
                    {p11.Attribute.EC_PARAMS: p11.util.ec.encode_named_curve_parameters(_EC_OIDS[spec])},
                    local=True,
                )
                pub, priv = params.generate_keypair(
                    store=True, label=parsed.object, id=key_id,
                    public_template=public_template, private_template=private_template,
                )
            else:
                raise KeyError_(f"the PKCS#11 backend cannot create {spec.value} keys", hint="use p256, p384 or rsa*")
        except p11.PKCS11Error as exc:
            raise BackendError(f"creating a {spec.value} key in token {token_label!r} failed: {exc!r}") from None
    full = Pkcs11Uri(token=token_label, object=parsed.object, id=key_id)
    return Pkcs11Key(session, priv, _public_key_of(p11, pub), full)
