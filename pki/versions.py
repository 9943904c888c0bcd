"""OCPP protocol versions known to ocppsec.

Only the codec/adapter layers (``v16`` / ``v201`` / ``v21`` modules of each subpackage) switch on this
enum; the core works with version-neutral names.
"""

from __future__ import annotations

import enum

from ocppsec.pki.errors import UsageError

__all__ = ["OcppVersion"]


class OcppVersion(enum.Enum):
    """An OCPP version. ``V16`` means OCPP-J 1.6 with the security white paper (edition 2/3)."""

    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"

    @property
    def subprotocol(self) -> str:
        """The WebSocket subprotocol name (``ocpp1.6``, ``ocpp2.0.1``, ``ocpp2.1``)."""
        return f"ocpp{self.value}"

    @classmethod
    def parse(cls, text: str) -> OcppVersion:
        """Accept ``1.6``, ``16``, ``v16``, ``ocpp1.6``, ``2.0.1``, ``201``, ``2.1``, ``21`` ..."""
        norm = text.strip().lower().removeprefix("ocpp").removeprefix("v").replace("_", ".")
        aliases = {"1.6": cls.V16, "16": cls.V16, "2.0.1": cls.V201, "201": cls.V201, "2.1": cls.V21, "21": cls.V21}
        try:
            return aliases[norm]
        except KeyError:
            raise UsageError(
                f"unknown OCPP version {text!r}", hint="use one of 1.6, 2.0.1, 2.1"
            ) from None

    @classmethod
    def from_subprotocol(cls, subprotocol: str) -> OcppVersion:
        return cls.parse(subprotocol)
