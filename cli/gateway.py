"""``ocppsec gateway``: give any CSMS security profiles 1, 2 and 3.

Terminates the profile, authenticates the station against the registry, binds the identity, and relays
every OCPP message unchanged to ``UPSTREAM/IDENTITY`` with the same subprotocol. Runs until SIGINT or
SIGTERM.

``--sign-csrs --pki DIR --ca NAME``: the gateway answers the stations' SignCertificate itself with the
CA ``NAME`` of the PKI directory ``DIR`` (key passphrase from ``$OCPPSEC_PASSPHRASE``), sends them
CertificateSigned and keeps the per-station inventory beside the directory's ledger: in its PostgreSQL
database when ``DIR/ledger.url`` names one (several CSMS nodes share it), else in ``DIR/inventory.db``;
``--inventory PATH|URL`` overrides. Those frames are not forwarded upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import click

from ocppsec.cli._common import PASSPHRASE_ENV, passphrase_for_reading
from ocppsec.pki.errors import UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway import Gateway, Relay
from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
from ocppsec.security_profiles.handshake import ServerPolicy, parse_profiles
from ocppsec.security_profiles.registry import DEFAULT_REGISTRY, StationRegistry
from ocppsec.security_profiles.registry_sql import open_registry
from ocppsec.security_profiles.server import DEFAULT_MAX_SIZE, on_uvloop
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
              help="station registry (SQLite path or postgresql:// URL)")
@click.option("--events", "events_db", default=None, help="event store for handshake failures and station events")
@click.option("--ocpp-versions", default="2.1,2.0.1,1.6", show_default=True, help="subprotocols served, preferred first")
@click.option("--max-frame", type=click.IntRange(1024, 16 * 1024 * 1024), default=DEFAULT_MAX_SIZE, show_default=True,
              help="largest WebSocket message accepted, bytes (larger: close 1009)")
@click.option("--base-path", default="/", show_default=True, help="URL path stations connect below")
@click.option("--sign-csrs", is_flag=True, help="answer SignCertificate in the gateway (needs --pki and --ca)")
@click.option("--pki", "pki_dir", metavar="DIR", help="PKI directory whose CA signs the stations' CSRs")
@click.option("--ca", "ca_name", metavar="NAME", help="CA in --pki for charging-station certificates (e.g. csms-root)")
@click.option("--v2g-ca", "v2g_ca", metavar="NAME", help="CA in --pki for V2G (ISO 15118-2) certificates; default: none")
@click.option("--inventory", "inventory_path", metavar="PATH|URL",
              help="certificate inventory: a SQLite path or postgresql:// URL (default: beside DIR's ledger)")
@click.option("--loop", "loop_name", type=click.Choice(["auto", "uvloop", "asyncio"]), default="auto", show_default=True,
              help="event loop: uvloop (compiled, less CPU per TLS handshake) when installed, else asyncio's")
@click.option("--relay", "relay_name", type=click.Choice([r.value for r in Relay]), default=Relay.AUTO.value,
              show_default=True,
              help="how messages are relayed: splice (no task per message; needs a websockets version it was verified on), "
                   "tasks (two tasks per station), auto (the splice where supported)")
@click.option("-v", "--verbose", count=True, help="log connections (-v) and details (-vv)")
def gateway(listen: str, profile_text: str, upstream: str, server_certs: tuple[str, ...], server_keys: tuple[str, ...],
            trust: tuple[str, ...], cso_name: str | None, stations_db: str, events_db: str | None, ocpp_versions: str,
            max_frame: int, base_path: str, sign_csrs: bool, pki_dir: str | None, ca_name: str | None,
            v2g_ca: str | None, inventory_path: str | None, loop_name: str, relay_name: str, verbose: int) -> None:
    """Terminate security profile 1, 2 or 3 in front of UPSTREAM."""
    import os

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(asctime)s %(name)s %(message)s")
    host, port = _host_port(listen)
    runner = _runner(loop_name)
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
    if sign_csrs and (not pki_dir or not ca_name):
        raise UsageError("--sign-csrs needs --pki DIR and --ca NAME", hint="e.g. --pki ./pki --ca csms-root")
    if not sign_csrs and (pki_dir or ca_name or v2g_ca or inventory_path):
        raise UsageError("--pki/--ca/--v2g-ca/--inventory only make sense with --sign-csrs")
    registry = open_registry(stations_db)
    closers: list[Callable[[], None]] = []
    signing = None
    if sign_csrs:
        assert pki_dir is not None
        assert ca_name is not None
        signing = _csr_signing(pki_dir, ca_name, v2g_ca, inventory_path, registry, cso_name, closers)
    sink = None
    if events_db is not None:
        from ocppsec.eventlog.store import BufferedSink
        from ocppsec.eventlog.store_sql import open_store

        store = open_store(events_db)
        buffered = BufferedSink(store)
        sink = buffered
        closers.append(buffered.close)
    gw = Gateway(policy=policy, registry=registry, upstream=upstream, ssl_context=ctx, sink=sink, max_size=max_frame,
                 csr_signing=signing, relay=relay_name)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with gw.serve(host, port):
            scheme = "wss" if policy.tls else "ws"
            on = "uvloop" if on_uvloop(asyncio.get_running_loop()) else "asyncio"
            click.echo(f"gateway listening on {scheme}://{host}:{port}{base_path} (profile {profile_text}, {on} loop, "
                       f"{gw.planned_relay()} relay) -> {upstream}", err=True)
            await stop.wait()

    try:
        runner(main())
    finally:
        for close in reversed(closers):
            close()
        registry.close()


def _runner(name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """``asyncio.run`` on the loop ``name`` names (``auto``: uvloop when it is installed)."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise UsageError("--loop uvloop: uvloop is not installed", hint="pip install uvloop, or --loop asyncio") from None
        else:
            return uvloop.run
    return asyncio.run


def _csr_signing(pki_dir: str, ca_name: str, v2g_ca: str | None, inventory_path: str | None, registry: StationRegistry,
                 cso_name: str | None, closers: list[Callable[[], None]]) -> CsrSigning:
    from ocppsec.pki.certmgmt import CertificateService, CertificateUse, LocalCaSigner, inventory_location, open_inventory
    from ocppsec.pki.directory import PkiDirectory

    pki = PkiDirectory.open(pki_dir, passphrase_for_reading(required=False))
    closers.append(pki.close)
    cas = {CertificateUse.CHARGING_STATION: ca_name, CertificateUse.COMBINED: ca_name}
    if v2g_ca:
        cas[CertificateUse.V2G] = v2g_ca
    signer = LocalCaSigner(pki, cas=cas)  # opens the CA keys now: a wrong passphrase stops here
    inventory = open_inventory(inventory_path or inventory_location(pki_dir))
    closers.append(inventory.close)
    cso = cso_name or pki.config.network.get("cso_name") or None
    service = CertificateService(signer, cso_name=cso, stations=RegistryStations(registry, cso_name=cso),
                                 inventory=inventory, ledger=pki.ledger)
    return CsrSigning(service)
