"""Station side adapter: :func:`connect` to a CSMS at security profile 1, 2 or 3.

- profile 1: ``ws://`` with HTTP Basic auth; profile 2: ``wss://`` with Basic auth; profile 3:
  ``wss://`` with the station certificate as TLS client certificate.
- The CSMS certificate must chain to the installed CSMS root(s) and its CN must be the FQDN (checked
  right after the TLS handshake, before the upgrade request and its password are sent; wildcards only
  with ``allow_wildcards``, i.e. AllowCSMSTLSWildcards).
- The Basic-auth password is checked against the OCPP password rules of the first version offered
  before anything is sent (2.0.1: the 2025 errata by default, ``password_rules="edition2"`` for Edition
  2's passwordString; see :func:`~.basic_auth.check_password`); a password that breaks them raises
  :class:`~ocppsec.pki.errors.PolicyError` naming the rules, never the password.
- Failures raise :class:`CsmsConnectionError` carrying the station-side security event
  (InvalidCsmsCertificate, InvalidTLSVersion, InvalidTLSCipherSuite, FailedToAuthenticateAtCsms), which is
  also recorded into ``sink`` when one is given.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ocppsec.pki.errors import OcppsecError, UsageError, VerificationError
from ocppsec.pki.events.sink import EventSink, local_event
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles import events as ev
from ocppsec.security_profiles.basic_auth import PasswordRules, authorization_header, verify_password_rules
from ocppsec.security_profiles.identity import identity_url
from ocppsec.security_profiles.server import DEFAULT_MAX_SIZE
from ocppsec.security_profiles.tls import CertChain, client_context, server_certificate, verify_server_identity

__all__ = ["CsmsConnectionError", "connect", "negotiated_version"]


class CsmsConnectionError(VerificationError):
    """The station could not connect to the CSMS; ``security_event`` names the event to log (if any)."""


def negotiated_version(connection: ClientConnection) -> OcppVersion:
    if connection.subprotocol is None:
        raise CsmsConnectionError("the CSMS agreed to no OCPP subprotocol")
    return OcppVersion.from_subprotocol(connection.subprotocol)


def _classify_client_tls(exc: BaseException) -> tuple[str, str | None]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"CSMS certificate rejected: {exc.verify_message}", ev.INVALID_CSMS_CERTIFICATE
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if "VERSION" in reason or "PROTOCOL" in reason:
            return f"TLS version refused by the CSMS or not offered ({exc.reason})", ev.INVALID_TLS_VERSION
        if "CIPHER" in reason or "HANDSHAKE_FAILURE" in reason or "INSUFFICIENT_SECURITY" in reason:
            return f"no acceptable cipher suite ({exc.reason})", ev.INVALID_TLS_CIPHER_SUITE
        if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
            return f"the CSMS refused the station certificate ({exc.reason})", ev.FAILED_TO_AUTHENTICATE
        return f"TLS handshake failed ({exc.reason or exc})", None
    return f"{exc.__class__.__name__}: {exc}", None


async def connect(
    endpoint: str,
    identity: str,
    *,
    profile: int,
    versions: Sequence[OcppVersion] = (OcppVersion.V201,),
    password: str | None = None,
    key_form: str = "hex",
    password_rules: PasswordRules | str = PasswordRules.ERRATA_2025,
    csms_roots: Sequence[Any] = (),
    client_chain: CertChain | None = None,
    fqdn: str | None = None,
    allow_wildcards: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    username: str | None = None,
    sink: EventSink | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    open_timeout: float = 10.0,
    **kwargs: Any,
) -> ClientConnection:
    """Open the OCPP WebSocket to ``endpoint/identity``; returns websockets' ``ClientConnection``.

    ``key_form`` (1.6 only): ``hex`` sends the AuthorizationKey hex-decoded (OCPP-J 1.6), ``string``
    sends it as text. ``password_rules``: which 2.0.1 password rules the password must follow
    (:class:`~.basic_auth.PasswordRules`). ``fqdn`` defaults to the endpoint's host name. ``username``: the
    Basic-auth username when it is not the identity (2.1: a network slot's own ``identity``, B09).
    """
    scheme = urlsplit(endpoint).scheme
    if profile not in (1, 2, 3):
        raise UsageError(f"security profile {profile} is not 1, 2 or 3")
    if (profile == 1) != (scheme == "ws") or scheme not in ("ws", "wss"):
        raise UsageError(f"profile {profile} needs a {'ws' if profile == 1 else 'wss'}:// URL, not {scheme}://")
    if not versions:
        raise UsageError("offer at least one OCPP version")
    headers: dict[str, str] = {}
    if profile in (1, 2):
        if password is None:
            raise UsageError(f"profile {profile} needs the Basic-auth password")
        verify_password_rules(password, versions[0], rules=password_rules)
        headers["Authorization"] = authorization_header(username or identity, password, versions[0], key_form=key_form)
    if profile in (2, 3) and ssl_context is None:
        ssl_context = client_context(csms_roots, client_chain=client_chain if profile == 3 else None)
    if profile == 3 and client_chain is None and ssl_context is None:
        raise UsageError("profile 3 needs the station certificate and key")
    host = urlsplit(endpoint).hostname or ""
    expected = fqdn or host
    holder: dict[str, OcppsecError] = {}

    class _Checked(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return
            try:
                verify_server_identity(server_certificate(ssl_object), expected, allow_wildcards=allow_wildcards)
            except VerificationError as exc:
                holder["error"] = exc
                abort = getattr(transport, "abort", None)  # asyncio's or uvloop's TLS transport
                if abort is not None:
                    abort()

    def fail(message: str, event: str | None, cause: BaseException | None = None) -> CsmsConnectionError:
        if event is not None and sink is not None:
            at = datetime.now(UTC)
            sink.record(local_event(event, station_id=identity, tech_info=message[:255], at=at))
        return CsmsConnectionError(message, security_event=event)

    url = identity_url(endpoint, identity)
    try:
        connection = await ws_connect(
            url,
            subprotocols=[Subprotocol(v.subprotocol) for v in versions],
            additional_headers=headers,
            ssl=ssl_context if profile in (2, 3) else None,
            server_hostname=expected if profile in (2, 3) else None,
            create_connection=_Checked,
            compression=None,
            max_size=max_size,
            open_timeout=open_timeout,
            **kwargs,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        event = ev.FAILED_TO_AUTHENTICATE if status in (401, 403) else None
        raise fail(f"the CSMS refused the connection with HTTP {status}", event) from None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        message, event = _classify_client_tls(exc)
        raise fail(message, event) from None
    except (TimeoutError, OSError, InvalidHandshake, EOFError) as exc:
        if "error" in holder:
            err = holder["error"]
            raise fail(err.message, err.security_event) from None
        message, event = _classify_client_tls(exc)
        raise fail(f"cannot connect to {url}: {message}", event) from None
    except Exception:
        if "error" in holder:
            err = holder["error"]
            raise fail(err.message, err.security_event) from None
        raise
    if "error" in holder:
        err = holder["error"]
        await connection.close()
        raise fail(err.message, err.security_event)
    return connection
