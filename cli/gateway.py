"""``ocppsec gateway``: give any CSMS security profiles 1, 2 and 3.

Terminates the profile, authenticates the station against the registry, binds the identity, and relays
every OCPP message unchanged to ``UPSTREAM/IDENTITY`` with the same subprotocol. Runs until SIGINT or
SIGTERM.

``--sign-csrs --pki DIR --ca NAME``: the gateway answers the stations' SignCertificate itself with the
CA ``NAME`` of the PKI directory ``DIR`` (key passphrase from ``$OCPPSEC_PASSPHRASE``), sends them
CertificateSigned and keeps the per-station inventory beside the directory's ledger: in its PostgreSQL
database when ``DIR/ledger.url`` names one (several CSMS nodes share it), else in ``DIR/inventory.db``;
``--inventory PATH|URL`` overrides. Those frames are not forwarded upstream.

Revocation (profile 3): ``--crl FILE|URL`` (repeatable; files reloaded when they change, URLs fetched
again ahead of their nextUpdate), ``--pki DIR`` (the ledger's revocations, read in the background) and
``--ocsp auto|URL`` (the certificate's AIA responder or one responder, answers cached) are checked at every
handshake; ``--revocation-fail open|closed`` (default closed) says what a station gets when a source
cannot answer for its certificate. Connected stations are closed (1008, with their security event) when
their certificate is revoked, when they are removed from the registry or when their registered profile
changes (see :mod:`ocppsec.security_profiles.gateway.guard`). Registry lookups come from an in-memory
snapshot refreshed in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from ocppsec.cli._common import PASSPHRASE_ENV, passphrase_for_reading
from ocppsec.pki.errors import UsageError
from ocppsec.pki.revocation.check import CrlError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway import Gateway, Relay
from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.revocation import FailMode
from ocppsec.security_profiles.gateway.revocation_io import (
    CrlFile,
    CrlSource,
    CrlUrl,
    LedgerSource,
    OcspChecker,
    RevocationChecker,
)
from ocppsec.security_profiles.handshake import ServerPolicy, parse_profiles
from ocppsec.security_profiles.redact import install_credential_filter
from ocppsec.security_profiles.registry import DEFAULT_REGISTRY, StationRegistry
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot
from ocppsec.security_profiles.registry_sql import open_registry
from ocppsec.security_profiles.server import DEFAULT_MAX_SIZE, on_uvloop
from ocppsec.security_profiles.tls import CertChain, server_context

if TYPE_CHECKING:
    from ocppsec.eventlog.queued import QueuedSink

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
@click.option("--event-spool", "event_spool", default=None, metavar="PATH",
              help="where events wait while the event store is unavailable (default: beside a SQLite store, "
                   "else ./ocppsec-events.spool); one per gateway process")
@click.option("--ocpp-versions", default="2.1,2.0.1,1.6", show_default=True, help="subprotocols served, preferred first")
@click.option("--max-frame", type=click.IntRange(1024, 16 * 1024 * 1024), default=DEFAULT_MAX_SIZE, show_default=True,
              help="largest WebSocket message accepted, bytes (larger: close 1009)")
@click.option("--base-path", default="/", show_default=True, help="URL path stations connect below")
@click.option("--sign-csrs", is_flag=True, help="answer SignCertificate in the gateway (needs --pki and --ca)")
@click.option("--pki", "pki_dir", metavar="DIR",
              help="PKI directory: its ledger's revocations are enforced (profile 3); its CA signs CSRs with --sign-csrs")
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
@click.option("--crl", "crls", multiple=True, metavar="FILE|URL",
              help="CRL station certificates are checked against (repeatable; files reloaded when they change)")
@click.option("--ocsp", "ocsp", metavar="auto|URL", help="check station certificates by OCSP: auto (their AIA) or a responder")
@click.option("--ocsp-timeout", type=click.FloatRange(0.1, 30), default=None,
              help="seconds a handshake waits for an OCSP answer not in the cache  [default: 3]")
@click.option("--ocsp-max-age", type=click.IntRange(1), default=None,
              help="seconds an OCSP answer is used at most (sooner when its nextUpdate says so)  [default: 3600]")
@click.option("--revocation-fail", "revocation_fail", type=click.Choice([m.value for m in FailMode]), default=None,
              help="a certificate no source can answer for: closed refuses it (the default), open admits it")
@click.option("-v", "--verbose", count=True, help="log connections (-v) and details (-vv)")
def gateway(listen: str, profile_text: str, upstream: str, server_certs: tuple[str, ...], server_keys: tuple[str, ...],
            trust: tuple[str, ...], cso_name: str | None, stations_db: str, events_db: str | None, ocpp_versions: str,
            max_frame: int, base_path: str, sign_csrs: bool, pki_dir: str | None, ca_name: str | None,
            v2g_ca: str | None, inventory_path: str | None, loop_name: str, relay_name: str, crls: tuple[str, ...],
            ocsp: str | None, ocsp_timeout: float | None, ocsp_max_age: int | None, revocation_fail: str | None,
            verbose: int, event_spool: str | None) -> None:
    """Terminate security profile 1, 2 or 3 in front of UPSTREAM."""
    import os

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(asctime)s %(name)s %(message)s")
    install_credential_filter(*logging.getLogger().handlers)  # every logger's records, at every verbosity
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
    if not sign_csrs and (ca_name or v2g_ca or inventory_path):
        raise UsageError("--ca/--v2g-ca/--inventory only make sense with --sign-csrs")
    if pki_dir and not sign_csrs and 3 not in profiles:
        raise UsageError("--pki without --sign-csrs enforces the ledger's revocations, which only profile 3 has")
    checker = _revocation(profiles, trust, crls, pki_dir, ocsp, ocsp_timeout, ocsp_max_age, revocation_fail, sign_csrs)
    registry = open_registry(stations_db)
    snapshot = RegistrySnapshot(registry)
    closers: list[Callable[[], None]] = []
    signing = None
    if sign_csrs:
        assert pki_dir is not None
        assert ca_name is not None
        signing = _csr_signing(pki_dir, ca_name, v2g_ca, inventory_path, snapshot, cso_name, closers)
    sink = None
    if events_db is not None:
        sink = _event_sink(events_db, event_spool)
        closers.append(lambda: _close_sink(sink))
    gw = Gateway(policy=policy, registry=snapshot, upstream=upstream, ssl_context=ctx, sink=sink, max_size=max_frame,
                 csr_signing=signing, relay=relay_name)
    guard = StationGuard(gw, revocation=checker, registry=snapshot)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await guard.start()
        except BaseException as exc:
            await guard.stop()
            if isinstance(exc, CrlError):
                hint = exc.hint or "give a CRL its CA (--trust or --pki) issued"
                raise UsageError(f"--crl: {exc.message}", hint=hint) from None
            raise
        try:
            async with gw.serve(host, port):
                scheme = "wss" if policy.tls else "ws"
                on = "uvloop" if on_uvloop(asyncio.get_running_loop()) else "asyncio"
                checks = f"; revocation: {checker.describe()}" if checker is not None else ""
                click.echo(f"gateway listening on {scheme}://{host}:{port}{base_path} (profile {profile_text}, {on} loop, "
                           f"{gw.planned_relay()} relay) -> {upstream}{checks}", err=True)
                await stop.wait()
        finally:
            await guard.stop()

    try:
        snapshot.start()
        runner(main())
    finally:
        snapshot.close()
        for close in reversed(closers):
            close()
        registry.close()


def _event_sink(events_db: str, event_spool: str | None) -> QueuedSink:
    """The gateway's event sink: a queue drained by a writer thread, spooled to disk while the store is away."""
    from pathlib import Path

    from ocppsec.eventlog.queued import QueuedSink
    from ocppsec.eventlog.store_sql import open_store
    from ocppsec.pki.errors import StoreReadOnlyError, StoreUnavailableError
    from ocppsec.pki.storage import parse_url

    try:
        open_store(events_db).close()  # a wrong path or URL stops here; the schema is created or migrated
    except StoreUnavailableError as exc:  # down now: start anyway, events wait in the spool
        click.echo(f"warning: {exc.message}; events are spooled until it is back", err=True)
    except StoreReadOnlyError as exc:
        click.echo(f"warning: {exc.message}; events are spooled until it is writable", err=True)
    if event_spool is None:
        url = parse_url(events_db, what="event store")
        event_spool = f"{url.path}.spool" if url.path else "./ocppsec-events.spool"
    return QueuedSink(lambda: open_store(events_db), spool=Path(event_spool))


def _close_sink(sink: QueuedSink) -> None:
    sink.close()
    left = sink.counters()
    if left.in_spool:
        click.echo(f"warning: {left.in_spool} event(s) wait in the spool; they are written at the next start", err=True)
    if left.dropped:
        click.echo(f"warning: {left.dropped} event(s) were dropped (queue full, spool not writable)", err=True)


def _revocation(profiles: frozenset[int], trust: tuple[str, ...], crls: tuple[str, ...], pki_dir: str | None,
                ocsp: str | None, timeout: float | None, max_age: int | None, fail: str | None,
                sign_csrs: bool) -> RevocationChecker | None:
    """The revocation checker the options ask for (None: no revocation checks); usage errors for bad options.

    ``--pki`` enforces the ledger's revocations; given for ``--sign-csrs`` with a directory none of whose CAs
    is under the ``--trust`` roots, it has nothing to say about the stations and is left out."""
    from datetime import timedelta
    from pathlib import Path

    from ocppsec.pki.pem import load_certificates

    if ocsp is None and (timeout is not None or max_age is not None):
        raise UsageError("--ocsp-timeout/--ocsp-max-age need --ocsp auto|URL")
    if not (crls or ocsp or pki_dir):
        if fail is not None:
            raise UsageError("--revocation-fail needs a revocation source", hint="--crl FILE|URL, --ocsp auto|URL or --pki DIR")
        return None
    if 3 not in profiles:
        if crls or ocsp or fail is not None:
            raise UsageError("--crl/--ocsp/--revocation-fail check station certificates: they need profile 3",
                             hint="e.g. --profile 3 or --profile 2,3")
        return None  # --pki for --sign-csrs alone
    sources: list[CrlSource] = []
    for spec in crls:
        if spec.startswith(("http://", "https://")):
            sources.append(CrlUrl(spec))
        elif "://" in spec:
            raise UsageError(f"--crl {spec!r} is neither a file nor an http(s) URL")
        elif not Path(spec).is_file():
            raise UsageError(f"--crl {spec}: no such file", hint="give a CRL file (PEM or DER) or an http(s) URL")
        else:
            sources.append(CrlFile(spec))
    checker_ocsp = None
    if ocsp is not None:
        if ocsp != "auto" and not ocsp.startswith(("http://", "https://")):
            raise UsageError(f"--ocsp {ocsp!r} is neither auto nor an http(s) URL",
                             hint="auto asks each certificate's AIA responder")
        checker_ocsp = OcspChecker(ocsp, timeout=timeout or 3.0, max_age=timedelta(seconds=max_age or 3600))
    issuers = [c for path in trust for c in load_certificates(Path(path).read_bytes())]
    ledger = None
    if pki_dir:
        try:
            ledger = LedgerSource.from_directory(pki_dir, trusted=issuers)
        except UsageError:
            if not sign_csrs:
                raise
    if not (sources or ledger or checker_ocsp):
        if fail is not None:
            raise UsageError("--revocation-fail: --pki holds no CA under the --trust roots, and no other source is given")
        return None
    return RevocationChecker(issuers=issuers, crls=sources, ledger=ledger, ocsp=checker_ocsp,
                             fail=fail or FailMode.CLOSED)


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
