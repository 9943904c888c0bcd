"""OCSP client over HTTP (aiohttp's client): query a responder URL, download a CRL.

- :func:`fetch_async` / :func:`fetch` — POST (or GET, RFC 6960 A.1) the DER request to the responder URL
  and return the response body; network failures and non-OCSP answers raise
  :class:`OcspUnavailableError` (exit 3), a response over ``max_bytes`` is refused while it is read;
- :func:`query_async` / :func:`query` — build, send and check in one go;
- :func:`fetch_crl_async` / :func:`fetch_crl` — download a CRL (HTTP GET), bounded the same way.

The ``*_async`` functions run on the caller's loop; the others are their synchronous wrappers for code
that is not async (the CSMS revocation service, which the OCPP handlers run in worker threads; the CLI).
Building requests and checking responses is the sans-I/O core, :mod:`ocppsec.pki.revocation.ocsp_client_core`
(re-exported here).
"""

from __future__ import annotations

import base64
import urllib.parse
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509

from ocppsec.pki._http import run_blocking
from ocppsec.pki.errors import OcppsecError, UsageError
from ocppsec.pki.revocation.ocsp import CertId
from ocppsec.pki.revocation.ocsp_client_core import OcspResult, build_request, check_response

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "OcspResult",
    "OcspUnavailableError",
    "build_request",
    "check_response",
    "fetch",
    "fetch_async",
    "fetch_crl",
    "fetch_crl_async",
    "query",
    "query_async",
]

MAX_RESPONSE_BYTES = 64 * 1024
MAX_CRL_BYTES = 32 * 1024 * 1024


class OcspUnavailableError(OcppsecError):
    """The responder could not be reached or did not answer with an OCSP response."""

    exit_code = 3


def _checked_url(url: str, what: str) -> urllib.parse.SplitResult:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"{what} {url!r} is not an http(s) URL")
    return parsed


async def _read_bounded(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The body, or None once it passes ``max_bytes`` (the rest is not read)."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch_async(url: str, request_der: bytes, *, timeout: float = 10.0, method: str = "POST",
                      max_bytes: int = MAX_RESPONSE_BYTES) -> bytes:
    """Send the request to ``url`` and return the raw response body (see the module docstring)."""
    import aiohttp
    from yarl import URL

    _checked_url(url, "OCSP responder URL")
    headers = {"Content-Type": "application/ocsp-request"}
    body: bytes | None = request_der
    if method == "GET":
        encoded = urllib.parse.quote(base64.b64encode(request_der).decode("ascii"), safe="")
        target = URL(url.rstrip("/") + "/" + encoded, encoded=True)
        headers, body = {}, None
    elif method == "POST":
        target = URL(url)
    else:
        raise UsageError(f"OCSP over HTTP uses GET or POST, not {method}")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.request(method, target, data=body, headers=headers, allow_redirects=False) as resp:
            data = await _read_bounded(resp, max_bytes)
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise OcspUnavailableError(f"OCSP responder {url} is unreachable: {str(exc) or type(exc).__name__}",
                                   hint="check the responderURL and the network") from None
    if data is None:
        raise OcspUnavailableError(f"OCSP responder {url} sent more than {max_bytes} bytes")
    if status != 200 and not data.startswith(b"\x30"):
        raise OcspUnavailableError(f"OCSP responder {url} answered HTTP {status}")
    return data


def fetch(url: str, request_der: bytes, *, timeout: float = 10.0, method: str = "POST",
          max_bytes: int = MAX_RESPONSE_BYTES) -> bytes:
    """:func:`fetch_async` for synchronous callers."""
    return run_blocking(lambda: fetch_async(url, request_der, timeout=timeout, method=method, max_bytes=max_bytes))


async def query_async(
    url: str, cert_id: CertId, *, at: datetime, issuer: x509.Certificate | None = None, timeout: float = 10.0,
    method: str = "POST", with_nonce: bool = True,
) -> OcspResult:
    """Build, send and check in one go."""
    request, nonce = build_request(cert_id, with_nonce=with_nonce)
    body = await fetch_async(url, request, timeout=timeout, method=method)
    return check_response(body, cert_id, at=at, issuer=issuer, nonce=nonce)


def query(
    url: str, cert_id: CertId, *, at: datetime, issuer: x509.Certificate | None = None, timeout: float = 10.0,
    method: str = "POST", with_nonce: bool = True,
) -> OcspResult:
    """:func:`query_async` for synchronous callers."""
    return run_blocking(lambda: query_async(url, cert_id, at=at, issuer=issuer, timeout=timeout, method=method,
                                            with_nonce=with_nonce))


async def fetch_crl_async(url: str, *, timeout: float = 30.0, max_bytes: int = MAX_CRL_BYTES) -> bytes:
    """Download a CRL (HTTP GET) for GetCertificateChainStatus with source CRL."""
    import aiohttp

    _checked_url(url, "CRL URL")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.get(url) as resp:
            status = resp.status
            data = await _read_bounded(resp, max_bytes) if status == 200 else b""
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise OcspUnavailableError(f"CRL at {url} is unreachable: {str(exc) or type(exc).__name__}") from None
    if status != 200:
        raise OcspUnavailableError(f"CRL at {url} is unreachable: HTTP {status}")
    if data is None:
        raise OcspUnavailableError(f"CRL at {url} is larger than {max_bytes} bytes")
    return data


def fetch_crl(url: str, *, timeout: float = 30.0, max_bytes: int = MAX_CRL_BYTES) -> bytes:
    """:func:`fetch_crl_async` for synchronous callers."""
    return run_blocking(lambda: fetch_crl_async(url, timeout=timeout, max_bytes=max_bytes))
