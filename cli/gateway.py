"""``ocppsec gateway``: give any CSMS security profiles 1, 2 and 3.

Terminates the profile, authenticates the station against the registry, binds the identity, and relays
every OCPP message unchanged to ``UPSTREAM/IDENTITY`` with the same subprotocol. Runs until SIGINT or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from ocppsec.cli._common import PASSPHRASE_ENV
from ocppsec.pki.errors import UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy, parse_profiles
from ocppsec.security_profiles.registry import DEFAULT_REGISTRY, open_registry
from ocppsec.security_profiles.server import DEFAULT_MAX_SIZE
from ocppsec.security_profiles.tls import CertChain, server_context

__all__ = ["gateway"]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--listen {text!r} is not HOST:PORT", hint="e.g. --listen 0.0.0.0:8443")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the user asked for all interfaces


@click.command("gateway")
@click.option("--listen", required=True, metavar="HOST:PORT", help="address to accept stations on")
@click.option("--profile", "profile_text", required=True, metavar="1|2|3|2,3",
              help="security profile(s) of this port; 2,3 lets the registry decide per station")
@click.option("--upstream", required=True, metavar="ws://HOST:PORT/PATH", help="the CSMS; the identity is appended")
@click.option("--server-cert", "server_certs", multiple=True, metavar="PEM",
              help="CSMS certificate chain (give the RSA and the ECDSA one; pairs with --server-key)")
@click.option("--server-key", "server_keys", multiple=True, metavar="PEM",
              help=f"key for the --server-cert at the same position (encrypted keys: ${PASSPHRASE_ENV})")
@click.option("--trust", "trust", multiple=True, metavar="PEM", help="CSO root(s) station certificates must chain to")
@click.option("--cso-name", help="organisation name station certificates must carry in O (A00.FR.404)")
@click.option("--stations", "stations_db", default=DEFAULT_REGISTRY, envvar="OCPPSEC_STATIONS", show_default=True,
              help="station registry (SQLite path)")
@click.option("--events", "events_db", default=None, help="event store for handshake failures and station events")
@click.option("--ocpp-versions", default="2.1,2.0.1,1.6", show_default=True, help="subprotocols served, preferred first")
@click.option("--max-frame", type=click.IntRange(1024, 16 * 1024 * 1024), default=DEFAULT_MAX_SIZE, show_default=True,
              help="largest WebSocket message accepted, bytes (larger: close 1009)")
@click.option("--base-path", default="/", show_default=True, help="URL path stations connect below")
@click.option("-v", "--verbose", count=True, help="log connections (-v) and details (-vv)")
def gateway(listen: str, profile_text: str, upstream: str, server_certs: tuple[str, ...], server_keys: tuple[str, ...],
            trust: tuple[str, ...], cso_name: str | None, stations_db: str, events_db: str | None, ocpp_versions: str,
            max_frame: int, base_path: str, verbose: int) -> None:
    """Terminate security profile 1, 2 or 3 in front of UPSTREAM."""
    import os

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(asctime)s %(name)s %(message)s")
    host, port = _host_port(listen)
    profiles = parse_profiles(profile_text)
    versions = tuple(OcppVersion.parse(v) for v in ocpp_versions.split(",") if v.strip())
    policy = ServerPolicy(profiles, versions, cso_name, base_path)
    ctx = None
    if policy.tls:
        if not server_certs or len(server_certs) != len(server_keys):
            raise UsageError("profiles 2 and 3 need --server-cert and --server-key (same number of each)",
                             hint="give the RSA and the ECDSA CSMS certificate: the four mandatory suites need both")
        if 3 in profiles and not cso_name:
            raise UsageError("profile 3 needs --cso-name (A00.FR.404)")
        secret = os.environ.get(PASSPHRASE_ENV)
        chains = [CertChain(c, k, secret.encode() if secret else None) for c, k in zip(server_certs, server_keys, strict=True)]
        mode = "required" if profiles == {3} else ("optional" if 3 in profiles else "none")
        ctx = server_context(chains, client_roots=trust, client_cert=mode)
    elif server_certs or trust:
        raise UsageError("profile 1 is plain ws://: --server-cert/--trust make no sense there")
    registry = open_registry(stations_db)
    sink = None
    closer = None
    if events_db is not None:
        from ocppsec.eventlog.store import BufferedSink, open_store

        store = open_store(events_db)
        buffered = BufferedSink(store)
        sink, closer = buffered, buffered.close
    gw = Gateway(policy=policy, registry=registry, upstream=upstream, ssl_context=ctx, sink=sink, max_size=max_frame)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with gw.serve(host, port):
            scheme = "wss" if policy.tls else "ws"
            click.echo(f"gateway listening on {scheme}://{host}:{port}{base_path} (profile {profile_text}) -> {upstream}",
                       err=True)
            await stop.wait()

    try:
        asyncio.run(main())
    finally:
        if closer is not None:
            closer()
        registry.close()
