"""Revocation: CRLs, OCSP and certificate status over OCPP.

The pure core: :mod:`.crl` (CRLs built from ledger records), :mod:`.check` (CRL checking on top of
path validation), :mod:`.ocsp` (the RFC 6960 responder core: bytes in, bytes out, time passed in),
:mod:`.ocsp_client_core` (building OCSP requests, checking responses), :mod:`.status` (version-neutral
GetCertificateStatus / GetCertificateChainStatus / Authorize glue), :mod:`.authorities` (the CAs of a PKI
directory with their delegated responder certificates). The OCPP wire shapes sit in the version codecs
:mod:`.v16`, :mod:`.v201`, :mod:`.v21`. The adapters do the I/O: :mod:`.server` (the HTTP responder, on
aiohttp), :mod:`.client` (OCSP and CRL over HTTP, aiohttp's client) and :mod:`.ocpp_handlers` (the
certificate-status parts of the ChargePoint composer, both sides).
Submodules are imported on demand.
"""
