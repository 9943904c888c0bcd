"""The TLS alert of a failed server-side handshake reaches the client before the connection is closed.

When OpenSSL refuses a ClientHello (a TLS 1.0/1.1 client: ``protocol_version``; no shared cipher:
``handshake_failure``; a rejected client certificate: ``unknown_ca``, ...) it writes the fatal alert into
the outgoing memory BIO and raises. Both asyncio's and uvloop's TLS protocols then close the transport
straight away (``_on_handshake_complete`` -> ``_fatal_error`` -> ``_force_close``) without writing what
is in that BIO, so the client sees a bare close and cannot tell why. Both protocols create their
``SSLObject`` through the context's :attr:`ssl.SSLContext.sslobject_class` (asyncio in its constructor,
uvloop in ``connection_made``), so :class:`AlertingSSLObject`, installed on the server context by
:func:`install`, writes the pending bytes to the connection's transport (handed over by
:func:`next_transport` right before) when ``do_handshake`` fails, and then lets the protocol close as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

__all__ = ["AlertingSSLObject", "install", "next_transport"]

_NEXT: list[asyncio.BaseTransport] = []  # the transport of the SSLObject being created now (one event loop thread)


class AlertingSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` that sends OpenSSL's alert when the handshake fails (see the module docstring)."""

    _alert_bio: ssl.MemoryBIO | None
    _alert_transport: asyncio.BaseTransport | None

    @classmethod
    def _create(cls, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *args: Any, **kwargs: Any) -> AlertingSSLObject:
        self: AlertingSSLObject = super()._create(incoming, outgoing, *args, **kwargs)  # type: ignore[misc]
        self._alert_bio = outgoing
        self._alert_transport = _NEXT[-1] if _NEXT else None
        return self

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError:
            self._send_alert()
            raise
        self._alert_transport = self._alert_bio = None

    def _send_alert(self) -> None:
        transport, bio = self._alert_transport, self._alert_bio
        self._alert_transport = self._alert_bio = None
        if transport is None or bio is None or transport.is_closing():
            return
        data = bio.read()
        if data:
            with contextlib.suppress(Exception):  # the peer may be gone already
                transport.write(data)  # type: ignore[attr-defined]


@contextlib.contextmanager
def next_transport(transport: asyncio.BaseTransport) -> Iterator[None]:
    """While the TLS protocol's ``connection_made`` creates its SSLObject: the transport its alert goes to."""
    _NEXT.append(transport)
    try:
        yield
    finally:
        _NEXT.pop()


def install(ctx: ssl.SSLContext) -> None:
    """Make ``ctx`` create :class:`AlertingSSLObject` s (set on this context object only)."""
    if not issubclass(ctx.sslobject_class, AlertingSSLObject):
        ctx.sslobject_class = AlertingSSLObject
