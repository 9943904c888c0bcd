"""The certificate-management codec of each OCPP version, in one table (no version ``if`` elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ocppsec.pki.certmgmt import v16, v21, v201
from ocppsec.pki.certmgmt.codec import Codec
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODECS", "codec_for"]

CODECS: Mapping[OcppVersion, Codec] = MappingProxyType(
    {OcppVersion.V16: v16.CODEC, OcppVersion.V201: v201.CODEC, OcppVersion.V21: v21.CODEC}
)


def codec_for(version: OcppVersion | str) -> Codec:
    """The codec of ``version`` (an :class:`OcppVersion` or any spelling :meth:`OcppVersion.parse` takes)."""
    return CODECS[version if isinstance(version, OcppVersion) else OcppVersion.parse(version)]
