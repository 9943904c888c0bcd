"""Keys and key backends.

:mod:`.base` holds the key types (:class:`KeySpec`, :class:`SignatureScheme`), the :class:`SigningKey`
interface every signer in ocppsec uses, and in-memory keys (:class:`LocalKey`). The backends are
adapters in modules of their own, imported on demand: :mod:`.files` (encrypted PKCS#8 key files) and
:mod:`.pkcs11` (token-held keys through python-pkcs11). :mod:`.delegated` turns any signing key into
the private-key object pyca's builders take (:func:`as_private_key`); PKCS#11 keys sign through it.
"""

from __future__ import annotations

from ocppsec.pki.keys.base import (
    KeySpec,
    LocalKey,
    PrivateKey,
    PublicKey,
    SignatureScheme,
    SigningKey,
    describe_public_key,
    generate_key,
    key_spec_of,
    pss_padding,
    public_key_bits,
)
from ocppsec.pki.keys.delegated import DelegatedEcKey, DelegatedRsaKey, as_private_key

__all__ = [
    "DelegatedEcKey",
    "DelegatedRsaKey",
    "KeySpec",
    "LocalKey",
    "PrivateKey",
    "PublicKey",
    "SignatureScheme",
    "SigningKey",
    "as_private_key",
    "describe_public_key",
    "generate_key",
    "key_spec_of",
    "pss_padding",
    "public_key_bits",
]
