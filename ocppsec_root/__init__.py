"""ocppsec: security and PKI toolkit for OCPP 1.6-security, 2.0.1, 2.1 and ISO 15118 charging networks.

Subpackages:

- :mod:`ocppsec.pki` -- certificate profiles, CSR policy, issuance, ledger, validation (the foundation)
- :mod:`ocppsec.firmware_signing` -- signed firmware (UpdateFirmware / SignedUpdateFirmware)
- :mod:`ocppsec.security_profiles` -- OCPP security profiles 1-3 for WebSocket connections
- :mod:`ocppsec.eventlog` -- security events (SecurityEventNotification, GetLog)
- :mod:`ocppsec.cli` -- the ``ocppsec`` command
"""

__version__ = "0.1.0"
