"""``ocppsec gateway``: give any CSMS security profiles 1, 2 and 3.

Terminates the profile, authenticates the station against the registry, binds the identity, and relays
every OCPP message unchanged to ``UPSTREAM/IDENTITY`` with the same subprotocol. Runs until SIGINT or
SIGTERM.

``--sign-csrs --pki DIR --ca NAME``: the gateway answers the stations' SignCertificate itself with the
CA ``NAME`` of the PKI directory ``DIR`` (key passphrase from ``$OCPPSEC_PASSPHRASE``), sends them
CertificateSigned and keeps the per-station inventory beside the directory's ledger: in its PostgreSQL
database when ``DIR/ledger.url`` names one (several CSMS nodes share it), else in ``DIR/inventory.db``;
``--inventory PATH|URL`` overrides. ``--v2g-ca NAME`` / ``--v2g20-ca NAME`` sign the stations' ISO 15118-2 /
ISO 15118-20 SECC CSRs (V2GCertificate / 2.1 V2G20Certificate) with those CAs of ``DIR``; without them such CSRs
are refused. Those frames are not forwarded upstream.

The upstream is opened before the station gets its 101, and its refusal is the station's (401, 403, 404;
503 when it is unreachable or slower than ``--upstream-open-timeout``). It learns the station's profile
and certificate from ``X-OCPP-*`` request headers. A ``wss://`` upstream is checked against
``--upstream-ca`` (default: the system's roots); ``--upstream-cert/--upstream-key`` give the gateway a
client certificate for it (key passphrase from ``$OCPPSEC_PASSPHRASE``), ``--upstream-basic-auth-env VAR``
Basic credentials (``$VAR`` holds ``user:password``; never logged).

Password rotations (A01) and security-profile changes (A05, B09) the CSMS makes over OCPP are followed
into the registry; ``--no-follow-changes`` turns that off (e.g. when the CSMS writes the registry itself).

Revocation (profile 3): ``--crl FILE|URL`` (repeatable; files reloaded when they change, URLs fetched
again ahead of their nextUpdate), ``--pki DIR`` (the ledger's revocations, read in the background) and
``--ocsp auto|URL`` (the certificate's AIA responder or one responder, answers cached) are checked at every
handshake; ``--revocation-fail open|closed`` (default closed) says what a station gets when a source
cannot answer for its certificate. Connected stations are closed (1008, with their security event) when
their certificate is revoked, when they are removed from the registry or when their registered profile
changes (see :mod:`ocppsec.security_profiles.gateway.guard`). Registry lookups come from an in-memory
snapshot refreshed in the background.

Operation (ADR 22): ``--config FILE`` (TOML; keys are the option names, loaded as click's defaults so the
command line wins; :mod:`~ocppsec.security_profiles.gateway.config`), ``--check-config``; SIGHUP reloads
(:mod:`~ocppsec.security_profiles.gateway.reload`), SIGTERM/SIGINT drain
(:mod:`~ocppsec.security_profiles.gateway.service`); ``--workers N`` under a supervisor
(:mod:`~ocppsec.security_profiles.gateway.workers`); ``--admin`` (:mod:`~ocppsec.security_profiles.gateway.admin`);
``--log-format json``; ``ocppsec gateway status`` (:mod:`ocppsec.cli.gateway_status`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import click
from cryptography import x509

from ocppsec.cli._common import PASSPHRASE_ENV, passphrase_for_reading
from ocppsec.cli._serve import loop_runner
from ocppsec.pki._io import check_file
from ocppsec.pki.errors import UsageError
from ocppsec.pki.revocation.check import CrlError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway import Gateway, Relay
from ocppsec.security_profiles.gateway.calls import StationCalls
from ocppsec.security_profiles.gateway.config import DEFAULT_ADMIN, ConfigReport, parse_admin, read_config, to_defaults
from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.logs import configure_logging
from ocppsec.security_profiles.gateway.reload import Reloader
from ocppsec.security_profiles.gateway.revocation import FailMode
from ocppsec.security_profiles.gateway.revocation_io import (
    CrlFile,
    CrlSource,
    CrlUrl,
    LedgerSource,
    OcspChecker,
    RevocationChecker,
)
from ocppsec.security_profiles.gateway.service import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_STALL_REPORT,
    EXIT_INTERRUPTED,
    GatewayService,
    ServiceOptions,
    cancel_stall_report,
)
from ocppsec.security_profiles.gateway.upstream import UpstreamAuth, upstream_context
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


def _config_options(command: click.Command) -> tuple[dict[str, str], set[str], list[str]]:
    """The configuration keys of ``command``: option long names and parameter names, the repeatable ones, and
    the names offered for a misspelt key."""
    options: dict[str, str] = {}
    multiple: set[str] = set()
    suggest: list[str] = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.name is None or param.name in _NOT_IN_CONFIG:
            continue
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("--"):
                options[opt[2:]] = param.name
                suggest.append(opt[2:])
        options[param.name] = param.name
        if param.multiple:
            multiple.add(param.name)
    return options, multiple, suggest


_NOT_IN_CONFIG = frozenset({"config", "help", "as_json"})  # --json: what this run prints, not configuration


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--config FILE`` (eager): its keys become the command's defaults, so the command line still wins."""
    if value is None or ctx.resilient_parsing:
        return value
    options, multiple, suggest = _config_options(ctx.command)
    defaults = to_defaults(read_config(value), options, multiple=multiple, suggest=suggest, source=f"--config {value}")
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


class _GatewayGroup(click.Group):
    """``ocppsec gateway [OPTIONS]`` runs the gateway; ``ocppsec gateway status`` asks a running one."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] | status [--admin URL] [--json]")


@click.group("gateway", cls=_GatewayGroup, invoke_without_command=True)
@click.option("--config", "config", metavar="TOML", is_eager=True, callback=_load_config,
              help="read options from this TOML file (keys are the option names: listen = \"0.0.0.0:8443\", "
                   "server_cert = [\"rsa.pem\", \"ec.pem\"]); options on the command line win")
@click.option("--check-config", is_flag=True,
              help="check the configuration (files, certificate/key pairs, passphrases, URLs) and exit: 0 ok, 2 problems")
@click.option("--listen", metavar="HOST:PORT", help="address to accept stations on")
@click.option("--profile", "profile_text", metavar="1|2|3|2,3",
              help="security profile(s) of this port; 2,3 lets the registry decide per station")
@click.option("--upstream", metavar="ws://HOST:PORT/PATH", help="the CSMS; the identity is appended")
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
@click.option("--v2g20-ca", "v2g20_ca", metavar="NAME",
              help="CA in --pki for ISO 15118-20 V2G certificates (2.1 V2G20Certificate, e.g. cpo-sub-ca-2-20); "
                   "default: none")
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
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="gateway processes sharing the port (SO_REUSEPORT), each with the whole configuration")
@click.option("--admin", "admin_text", default=DEFAULT_ADMIN, show_default=True, metavar="HOST:PORT|unix:PATH|off",
              help="admin listener: /healthz, /readyz, /metrics (Prometheus), /stations")
@click.option("--campaigns", "campaigns_db", metavar="PATH|URL",
              help="campaign record (SQLite path or postgresql:// URL): run renewal and root campaigns, driven "
                   "through the admin listener (`ocppsec campaign`); running campaigns are taken up at start")
@click.option("--onboarding", "onboarding", is_flag=True,
              help="profile 3: renew a station's expired certificate of --ca (A00.FR.429) or factory certificate "
                   "(--manufacturer-root, A00.FR.806) in a renewal-only session, where its registry record allows it "
                   "(`stations add --onboarding`); needs --campaigns and --sign-csrs")
@click.option("--manufacturer-root", "manufacturer_roots", multiple=True, metavar="PEM",
              help="with --onboarding: roots of the factory certificates stations may be onboarded with")
@click.option("--admin-token-env", "admin_token_env", metavar="VAR",
              help="the admin listener's POST routes (campaigns) need Authorization: Bearer $VAR")
@click.option("--drain-seconds", type=click.FloatRange(0, 3600), default=DEFAULT_DRAIN_SECONDS, show_default=True,
              help="on SIGTERM, how long stations (closed with 1001) get to leave before they are cut")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="log lines as text or as one JSON object per line")
@click.option("--upstream-ca", "upstream_ca", multiple=True, metavar="PEM",
              help="CA root(s) the wss:// upstream's certificate must chain to (default: the system's)")
@click.option("--upstream-cert", metavar="PEM", help="client certificate chain for the wss:// upstream")
@click.option("--upstream-key", metavar="PEM", help=f"key of --upstream-cert (encrypted keys: ${PASSPHRASE_ENV})")
@click.option("--upstream-basic-auth-env", "upstream_auth_env", metavar="VAR",
              help="Basic auth toward the upstream: $VAR holds user:password")
@click.option("--upstream-open-timeout", type=click.FloatRange(0.1, 9.9), default=5.0, show_default=True,
              help="seconds to open the upstream before the station is refused with 503")
@click.option("--no-follow-changes", "no_follow", is_flag=True,
              help="do not follow the password and profile changes the CSMS makes over OCPP into the registry")
@click.option("-v", "--verbose", count=True, help="log connections (-v) and details (-vv)")
@click.option("--json", "as_json", is_flag=True,
              help="with --check-config: the report as JSON; otherwise a failure to start is also a JSON error object")
@click.pass_context
def gateway(ctx: click.Context, config: str | None, check_config: bool, listen: str | None, profile_text: str | None,
            upstream: str | None, server_certs: tuple[str, ...], server_keys: tuple[str, ...],
            trust: tuple[str, ...], cso_name: str | None, stations_db: str, events_db: str | None, ocpp_versions: str,
            max_frame: int, base_path: str, sign_csrs: bool, pki_dir: str | None, ca_name: str | None,
            v2g_ca: str | None, v2g20_ca: str | None, inventory_path: str | None, loop_name: str, relay_name: str,
            crls: tuple[str, ...],
            ocsp: str | None, ocsp_timeout: float | None, ocsp_max_age: int | None, revocation_fail: str | None,
            upstream_ca: tuple[str, ...], upstream_cert: str | None, upstream_key: str | None,
            upstream_auth_env: str | None, upstream_open_timeout: float, no_follow: bool,
            workers: int, admin_text: str, drain_seconds: float, log_format: str, verbose: int,
            event_spool: str | None, campaigns_db: str | None, admin_token_env: str | None, onboarding: bool,
            manufacturer_roots: tuple[str, ...], as_json: bool) -> None:
    """Terminate security profile 1, 2 or 3 in front of UPSTREAM.

    SIGHUP reloads the server certificates and keys, the trusted roots, the CRLs and the registry (connected
    stations stay); SIGTERM drains (stations closed with 1001, at most --drain-seconds) and exits 0."""
    if ctx.invoked_subcommand is not None:
        return
    handler = configure_logging(logging.WARNING - 10 * min(verbose, 2), log_format)
    install_credential_filter(handler)  # every logger's records, at every verbosity, text or JSON
    opts = _Options.from_params(ctx.params)
    opts.admin_required = ctx.get_parameter_source("admin_text") is not click.core.ParameterSource.DEFAULT
    worker = _worker_index()
    if check_config:
        _report(_check(opts), config or "the configuration", as_json)
        return
    _campaign_usage(opts)
    if workers > 1 and worker is None:
        _supervise(opts, log_format)
        return
    _serve(opts, worker, log_format)


def _report(report: ConfigReport, name: str, as_json: bool) -> None:
    """``--check-config``'s output: every note and problem on its own line (stderr), the verdict; with
    ``--json`` the report on stdout, a failed one carrying the error object under ``"error"`` (as every
    report does); exit 2 when there are problems."""
    from ocppsec.cli._common import echo_json

    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    error = None if report.ok else UsageError(f"{name}: {len(report.problems)} problem(s)",
                                              hint="fix each problem: line; run --check-config again")
    if as_json:
        echo_json({**report.as_dict(), "error": error.to_json() if error is not None else None})
    if error is not None:
        click.echo(f"error: {error.diagnostics()}", err=True)  # the last line, as main.py writes a failure
        sys.exit(2)
    if not as_json:
        click.echo(f"{name}: ok ({len(report.checked)} checks: {', '.join(report.checked)})")


@dataclass
class _Options:
    """The gateway command's options, after the configuration file and the command line."""

    listen: str | None
    profile_text: str | None
    upstream: str | None
    server_certs: tuple[str, ...]
    server_keys: tuple[str, ...]
    trust: tuple[str, ...]
    cso_name: str | None
    stations_db: str
    events_db: str | None
    event_spool: str | None
    ocpp_versions: str
    max_frame: int
    base_path: str
    sign_csrs: bool
    pki_dir: str | None
    ca_name: str | None
    v2g_ca: str | None
    v2g20_ca: str | None
    inventory_path: str | None
    loop_name: str
    relay_name: str
    crls: tuple[str, ...]
    ocsp: str | None
    ocsp_timeout: float | None
    ocsp_max_age: int | None
    revocation_fail: str | None
    upstream_ca: tuple[str, ...]
    upstream_cert: str | None
    upstream_key: str | None
    upstream_auth_env: str | None
    upstream_open_timeout: float
    no_follow: bool
    workers: int
    admin_text: str
    drain_seconds: float
    log_format: str
    admin_required: bool = True  # False for the default --admin: a port in use is a warning, not an error
    extra: dict[str, Any] = field(default_factory=dict)  # any other option, by parameter name

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> _Options:
        names = {f.name for f in fields(cls)} - {"admin_required", "extra"}
        known = {k: v for k, v in params.items() if k in names}
        return cls(**known, extra={k: v for k, v in params.items() if k not in names})

    @property
    def profiles(self) -> frozenset[int]:
        assert self.profile_text is not None
        return parse_profiles(self.profile_text)

    def policy(self) -> ServerPolicy:
        versions = tuple(OcppVersion.parse(v) for v in self.ocpp_versions.split(",") if v.strip())
        return ServerPolicy(self.profiles, versions, self.cso_name, self.base_path,
                            onboarding=bool(self.extra.get("onboarding")))


def _worker_index() -> int | None:
    """The worker's number when this process is a worker of a ``--workers`` supervisor."""
    from ocppsec.security_profiles.gateway.workers import WORKER_ENV

    value = os.environ.get(WORKER_ENV)
    return int(value) if value and value.isdigit() else None


def _required(opts: _Options) -> None:
    for name, value in (("--listen", opts.listen), ("--profile", opts.profile_text), ("--upstream", opts.upstream)):
        if not value:
            raise UsageError(f"missing option {name}", hint=f"give {name} or set {name[2:]} in the --config file")


def _check_upstream(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"--upstream {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--upstream {url!r} is not a ws:// or wss:// URL with a host", hint="e.g. ws://127.0.0.1:9000/ocpp")


def _usage(opts: _Options) -> None:
    """The option combinations that make no sense (UsageError for the first)."""
    profiles = opts.profiles
    if ServerPolicy(profiles, (OcppVersion.V201,), opts.cso_name, "/").tls:
        if not opts.server_certs or len(opts.server_certs) != len(opts.server_keys):
            raise UsageError("profiles 2 and 3 need --server-cert and --server-key (same number of each)",
                             hint="give the RSA and the ECDSA CSMS certificate: the four mandatory suites need both")
        if 3 in profiles and not opts.cso_name:
            raise UsageError("profile 3 needs --cso-name (A00.FR.404)")
    elif opts.server_certs or opts.trust:
        raise UsageError("profile 1 is plain ws://: --server-cert/--trust make no sense there")
    if opts.sign_csrs and (not opts.pki_dir or not opts.ca_name):
        raise UsageError("--sign-csrs needs --pki DIR and --ca NAME", hint="e.g. --pki ./pki --ca csms-root")
    if not opts.sign_csrs and (opts.ca_name or opts.v2g_ca or opts.v2g20_ca or opts.inventory_path):
        raise UsageError("--ca/--v2g-ca/--v2g20-ca/--inventory only make sense with --sign-csrs")
    if opts.pki_dir and not opts.sign_csrs and 3 not in profiles:
        raise UsageError("--pki without --sign-csrs enforces the ledger's revocations, which only profile 3 has")
    _campaign_usage(opts)


def _campaign_usage(opts: _Options) -> None:
    campaigns, token_env = opts.extra.get("campaigns_db"), opts.extra.get("admin_token_env")
    if token_env and not os.environ.get(token_env):
        raise UsageError(f"--admin-token-env {token_env}: the variable is not set or empty")
    if opts.extra.get("manufacturer_roots") and not opts.extra.get("onboarding"):
        raise UsageError("--manufacturer-root only makes sense with --onboarding")
    if opts.extra.get("onboarding") and (not campaigns or not opts.sign_csrs or 3 not in opts.profiles):
        raise UsageError("--onboarding needs profile 3, --sign-csrs and --campaigns")
    if not campaigns:
        return
    if opts.workers > 1:
        raise UsageError("--campaigns runs in one gateway process: it cannot be combined with --workers",
                         hint="run the campaigns with --workers 1")
    admin = parse_admin(opts.admin_text)
    if admin is None:
        raise UsageError("--campaigns is driven through the admin listener: --admin off leaves no way to start one")
    if admin.path is None and admin.host not in ("127.0.0.1", "::1", "localhost") and not token_env:
        raise UsageError(f"--admin {opts.admin_text} is not loopback: the campaign routes need --admin-token-env",
                         hint="set a token in an environment variable and give its name")


def _chains(opts: _Options) -> list[CertChain]:
    secret = os.environ.get(PASSPHRASE_ENV)
    password = secret.encode() if secret else None
    return [CertChain(c, k, password) for c, k in zip(opts.server_certs, opts.server_keys, strict=True)]


def _tls_builder(opts: _Options) -> Callable[[], ssl.SSLContext] | None:
    """What builds the TLS server context from the files as they are now (None for profile 1): at start and
    at every reload."""
    if not opts.policy().tls:
        return None
    profiles = opts.profiles
    mode = "required" if profiles == {3} else ("optional" if 3 in profiles else "none")

    onboarding = bool(opts.extra.get("onboarding"))
    roots = (*opts.trust, *opts.extra.get("manufacturer_roots", ())) if onboarding else opts.trust

    def build() -> ssl.SSLContext:
        ctx = server_context(_chains(opts), client_roots=roots, client_cert=mode)
        if onboarding:
            from ocppsec.security_profiles.gateway.campaigns.onboarding import allow_expired_client_certificates

            allow_expired_client_certificates(ctx)  # the handshake checks the validity period (A00.FR.403)
        return ctx

    return build


def _roots(opts: _Options) -> Callable[[], list[x509.Certificate]]:
    def read() -> list[x509.Certificate]:
        from ocppsec.pki._io import read_bounded
        from ocppsec.pki.pem import load_certificates

        out: list[x509.Certificate] = []
        for path in opts.trust:  # as tls.server_context reads them: a missing or unreadable file is exit 3
            out.extend(load_certificates(read_bounded(path, what="trusted root file", limit=1 << 20),
                                         what=f"trusted root file {path}"))
        return out

    return read


def _check(opts: _Options) -> ConfigReport:
    """Everything that can be checked without serving, each problem on its own line."""
    report = ConfigReport()
    if not report.passes("required options", lambda: _required(opts)):
        return report
    listen = report.check("--listen", lambda: _host_port(opts.listen or ""))
    if not report.passes("--profile", lambda: opts.profiles):
        return report
    report.check("--ocpp-versions", opts.policy)
    if report.passes("--upstream", lambda: _check_upstream(opts.upstream or "")):
        report.check("upstream hop (--upstream-ca/-cert/-key/-basic-auth-env)", lambda: _upstream_hop(
            opts.upstream or "", opts.upstream_ca, opts.upstream_cert, opts.upstream_key, opts.upstream_auth_env))
    admin = report.check("--admin", lambda: parse_admin(opts.admin_text))
    if admin is not None and listen is not None and admin.port and admin.port == listen[1]:
        report.problems.append("--admin: the admin listener cannot share the --listen port")
    if not report.passes("option combinations", lambda: _usage(opts)):
        return report
    build = _tls_builder(opts)
    if build is not None:
        for chain in _chains(opts):
            report.check(f"--server-cert {chain.certfile} / --server-key {chain.keyfile}",
                         lambda chain=chain: server_context([chain]))
        if opts.trust:
            report.check("--trust", _roots(opts))
        report.check("TLS server context", build)
    checker = report.check("revocation options", lambda: _revocation(
        opts.profiles, opts.trust, opts.crls, opts.pki_dir, opts.ocsp, opts.ocsp_timeout, opts.ocsp_max_age,
        opts.revocation_fail, opts.sign_csrs))
    if checker is not None:
        report.check("revocation sources (CRLs, ledger)", lambda: _probe_revocation(checker))

    def registry() -> None:
        reg = open_registry(opts.stations_db)
        try:
            reg.list()
        finally:
            reg.close()

    report.check(f"--stations {opts.stations_db}", registry)
    if opts.events_db is not None:
        def events() -> None:
            from ocppsec.eventlog.store_sql import open_store
            from ocppsec.pki.errors import StoreReadOnlyError, StoreUnavailableError

            try:
                open_store(opts.events_db or "").close()
            except (StoreUnavailableError, StoreReadOnlyError) as exc:  # the gateway starts anyway and spools
                report.notes.append(f"--events: {exc.message}; events are spooled until it is back")

        report.check(f"--events {opts.events_db}", events)
    if opts.sign_csrs and opts.pki_dir and opts.ca_name:
        def signing() -> None:
            closers: list[Callable[[], None]] = []
            try:
                registry_ = open_registry(opts.stations_db)
                closers.append(registry_.close)
                assert opts.pki_dir is not None
                assert opts.ca_name is not None
                _csr_signing(opts.pki_dir, opts.ca_name, opts.v2g_ca, opts.inventory_path, registry_, opts.cso_name, closers,
                             v2g20_ca=opts.v2g20_ca)
            finally:
                for close in reversed(closers):
                    close()

        report.check("--sign-csrs (PKI directory, CA keys, inventory)", signing)
    campaigns = opts.extra.get("campaigns_db")
    if campaigns:
        def record() -> None:
            from ocppsec.pki.lifecycle.campaign_sql import open_campaigns

            open_campaigns(campaigns).close()

        report.check(f"--campaigns {campaigns}", record)
    return report


def _probe_revocation(checker: RevocationChecker) -> None:
    async def probe() -> None:
        try:
            await checker.start()
        except CrlError as exc:
            raise UsageError(f"--crl: {exc.message}", hint=exc.hint or "give a CRL its CA (--trust or --pki) issued") from None
        finally:
            await checker.stop()

    asyncio.run(probe())


def _supervise(opts: _Options, log_format: str) -> None:
    """``--workers N``: check the configuration, then run the supervisor (it exits with the workers)."""
    from ocppsec.security_profiles.gateway.workers import Supervisor

    report = _check(opts)
    if not report.ok:
        raise UsageError("the configuration has problems: " + "; ".join(report.problems),
                         hint="run with --check-config to see them one per line")
    admin = parse_admin(opts.admin_text)
    supervisor = Supervisor([sys.executable, "-m", "ocppsec.cli.main", *sys.argv[1:]], opts.workers, admin=admin,
                            drain_seconds=opts.drain_seconds, announce=_announcer(log_format),
                            admin_required=opts.admin_required)
    code = asyncio.run(supervisor.run())
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt  # the workers drained after Ctrl-C: "error: interrupted", exit 130
    if code:
        sys.exit(code)


def _announcer(log_format: str) -> Callable[[str], None]:
    if log_format == "json":
        return lambda line: logging.getLogger("ocppsec.security_profiles.gateway.service").info(line)
    return lambda line: click.echo(line, err=True)


def _serve(opts: _Options, worker: int | None, log_format: str) -> None:
    """Build the gateway from ``opts`` and run it as a service until SIGTERM/SIGINT."""
    _required(opts)
    assert opts.listen is not None
    assert opts.upstream is not None
    host, port = _host_port(opts.listen)
    runner = loop_runner(opts.loop_name)
    admin = parse_admin(opts.admin_text)
    if worker is not None:
        from ocppsec.security_profiles.gateway.admin import socket_path
        from ocppsec.security_profiles.gateway.workers import RUNDIR_ENV

        admin = parse_admin(f"unix:{socket_path(os.environ[RUNDIR_ENV], worker)}")
    policy = opts.policy()
    profiles = opts.profiles
    _usage(opts)
    build_tls = _tls_builder(opts)
    ctx = build_tls() if build_tls is not None else None
    checker = _revocation(profiles, opts.trust, opts.crls, opts.pki_dir, opts.ocsp, opts.ocsp_timeout, opts.ocsp_max_age,
                          opts.revocation_fail, opts.sign_csrs)
    upstream_ssl, upstream_auth = _upstream_hop(opts.upstream, opts.upstream_ca, opts.upstream_cert, opts.upstream_key,
                                               opts.upstream_auth_env)
    registry = open_registry(opts.stations_db)
    snapshot = RegistrySnapshot(registry)
    closers: list[Callable[[], None]] = []
    signing = None
    issuers: list[Any] = []
    if opts.sign_csrs:
        assert opts.pki_dir is not None
        assert opts.ca_name is not None
        signing = _csr_signing(opts.pki_dir, opts.ca_name, opts.v2g_ca, opts.inventory_path, snapshot, opts.cso_name,
                               closers, issuers, v2g20_ca=opts.v2g20_ca)
    sink = None
    if opts.events_db is not None:
        sink = _event_sink(opts.events_db, _worker_spool(opts.event_spool, opts.events_db, worker))
        closers.append(lambda: _close_sink(sink))
    gw = Gateway(policy=policy, registry=snapshot, upstream=opts.upstream, ssl_context=ctx, sink=sink,
                 max_size=opts.max_frame, csr_signing=signing, relay=opts.relay_name, upstream_ssl=upstream_ssl,
                 upstream_auth=upstream_auth, upstream_open_timeout=opts.upstream_open_timeout,
                 follow_changes=not opts.no_follow, calls=StationCalls() if opts.extra.get("campaigns_db") else None)
    if opts.extra.get("campaigns_db"):
        _campaign_engine(gw, opts, snapshot, signing, issuers, closers)
    guard = StationGuard(gw, revocation=checker, registry=snapshot)
    reloader = Reloader(gw, tls=build_tls, roots=_roots(opts) if opts.trust else None, revocation=checker,
                        registry=snapshot)

    def describe() -> str:
        scheme = "wss" if policy.tls else "ws"
        on = "uvloop" if on_uvloop(asyncio.get_running_loop()) else "asyncio"
        checks = f"; revocation: {checker.describe()}" if checker is not None else ""
        who = f"gateway worker {worker} (pid {os.getpid()})" if worker is not None else "gateway"
        admin_line = f"; admin http://{admin}" if admin is not None and worker is None else ""
        return (f"{who} listening on {scheme}://{host}:{port}{policy.base_path} (profile {opts.profile_text}, {on} loop, "
                f"{gw.planned_relay()} relay) -> {opts.upstream}{checks}{admin_line}")

    options = ServiceOptions(host, port, drain_seconds=opts.drain_seconds, admin=admin, reuse_port=worker is not None,
                             worker=worker, announce=_announcer(opts.log_format), describe=describe,
                             admin_required=opts.admin_required or worker is not None,
                             stall_report=DEFAULT_STALL_REPORT,
                             admin_token=os.environ.get(opts.extra["admin_token_env"])
                             if opts.extra.get("admin_token_env") else None)
    service = GatewayService(gw, guard, options, reloader=reloader)
    codes: list[int] = []

    async def main() -> None:
        try:
            codes.append(await service.run())
        except CrlError as exc:
            hint = exc.hint or "give a CRL its CA (--trust or --pki) issued"
            raise UsageError(f"--crl: {exc.message}", hint=hint) from None

    try:
        snapshot.start()
        runner(main())
    finally:
        snapshot.close()
        for close in reversed(closers):
            close()
        registry.close()
        cancel_stall_report()
    if codes and codes[0] == EXIT_INTERRUPTED and worker is None:
        raise KeyboardInterrupt  # drained after Ctrl-C: "error: interrupted" (and --json's object), exit 130
    if codes and codes[0]:
        sys.exit(codes[0])  # not click's Exit: ocppsec.cli.main runs click in non-standalone mode, which returns it


def _upstream_hop(upstream: str, roots: tuple[str, ...], cert: str | None, key: str | None,
                  auth_env: str | None) -> tuple[ssl.SSLContext | None, UpstreamAuth | None]:
    """The TLS context and Basic credentials for the hop to the upstream, from the options."""
    auth = None
    if auth_env is not None:
        value = os.environ.get(auth_env)
        if value is None:
            raise UsageError(f"environment variable {auth_env} is not set", hint=f"export {auth_env}=user:password")
        auth = UpstreamAuth.parse(value)
    if (cert is None) != (key is None):
        raise UsageError("--upstream-cert and --upstream-key go together")
    if not upstream.startswith("wss://"):
        if roots or cert:
            raise UsageError("--upstream-ca/--upstream-cert need a wss:// --upstream")
        return None, auth
    secret = os.environ.get(PASSPHRASE_ENV)
    chain = CertChain(cert, key, secret.encode() if secret else None) if cert is not None and key is not None else None
    return upstream_context(roots, chain), auth


def _event_sink(events_db: str, event_spool: str | None) -> QueuedSink:
    """The gateway's event sink: a queue drained by a writer thread, spooled to disk while the store is away."""
    from pathlib import Path

    from ocppsec.eventlog.queued import QueuedSink
    from ocppsec.eventlog.store_sql import open_store
    from ocppsec.pki.errors import StoreReadOnlyError, StoreUnavailableError

    try:
        open_store(events_db).close()  # a wrong path or URL stops here; the schema is created or migrated
    except StoreUnavailableError as exc:  # down now: start anyway, events wait in the spool
        click.echo(f"warning: {exc.message}; events are spooled until it is back", err=True)
    except StoreReadOnlyError as exc:
        click.echo(f"warning: {exc.message}; events are spooled until it is writable", err=True)
    return QueuedSink(lambda: open_store(events_db), spool=Path(event_spool or _spool_path(events_db)))


def _spool_path(events_db: str) -> str:
    """The default event spool: beside a SQLite store, else in the working directory."""
    from ocppsec.pki.storage import parse_url

    url = parse_url(events_db, what="event store")
    return f"{url.path}.spool" if url.path else "./ocppsec-events.spool"


def _worker_spool(event_spool: str | None, events_db: str, worker: int | None) -> str | None:
    """A spool is one process's: worker ``i`` of ``--workers`` gets ``SPOOL.worker-i`` (its replacement after
    a restart replays it)."""
    if worker is None:
        return event_spool
    return f"{event_spool or _spool_path(events_db)}.worker-{worker}"


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

    from ocppsec.pki._io import read_bounded
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
        else:
            check_file(spec, what="CRL file", limit=64 << 20)  # missing, a directory, a FIFO: exit 3 (cli/main.py)
            sources.append(CrlFile(spec))
    checker_ocsp = None
    if ocsp is not None:
        if ocsp != "auto" and not ocsp.startswith(("http://", "https://")):
            raise UsageError(f"--ocsp {ocsp!r} is neither auto nor an http(s) URL",
                             hint="auto asks each certificate's AIA responder")
        checker_ocsp = OcspChecker(ocsp, timeout=timeout or 3.0, max_age=timedelta(seconds=max_age or 3600))
    issuers = [c for path in trust  # bounded, regular files only: --check-config goes on after a bad --trust
               for c in load_certificates(read_bounded(path, what="trusted root file", limit=1 << 20),
                                          what=f"trusted root file {path}")]
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


def _campaign_engine(gw: Gateway, opts: _Options, registry: StationRegistry, signing: CsrSigning | None,
                     issuers: list[Any], closers: list[Callable[[], None]]) -> None:
    """The campaign engine over the record ``--campaigns`` names, with the presented-certificate admission step
    and, with ``--onboarding``, the onboarding step and session."""
    from pathlib import Path

    from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
    from ocppsec.pki.pem import load_certificates
    from ocppsec.security_profiles.gateway.campaigns import CampaignEngine, PresentedCertificates
    from ocppsec.security_profiles.gateway.campaigns.onboarding import StationOnboarding

    inventory = signing.service.inventory if signing is not None else None
    presented = PresentedCertificates(issuers=issuers, inventory=inventory)
    closers.append(presented.close)
    gw.admission_steps.append(presented)
    store = open_campaigns(opts.extra["campaigns_db"])
    closers.append(store.close)
    engine = CampaignEngine(gw, store, presented=presented, inventory=inventory)  # attaches itself: gw.campaign_engine
    if opts.extra.get("onboarding"):
        roots: list[x509.Certificate] = []
        for path in opts.extra.get("manufacturer_roots", ()):
            try:
                roots.extend(load_certificates(Path(path).read_bytes(), what=path))
            except OSError as exc:
                raise UsageError(f"--manufacturer-root {path}: {exc.strerror or exc}") from None
        StationOnboarding(engine, registry, our_cas=issuers, manufacturer_roots=roots).install()


def _csr_signing(pki_dir: str, ca_name: str, v2g_ca: str | None, inventory_path: str | None, registry: StationRegistry,
                 cso_name: str | None, closers: list[Callable[[], None]], issuers: list[Any] | None = None, *,
                 v2g20_ca: str | None = None) -> CsrSigning:
    from ocppsec.pki.certmgmt import CertificateService, CertificateUse, LocalCaSigner, inventory_location, open_inventory
    from ocppsec.pki.directory import PkiDirectory

    pki = PkiDirectory.open(pki_dir, passphrase_for_reading(required=False))
    closers.append(pki.close)
    cas = {CertificateUse.CHARGING_STATION: ca_name, CertificateUse.COMBINED: ca_name}
    if v2g_ca:
        cas[CertificateUse.V2G] = v2g_ca
    if v2g20_ca:  # ISO 15118-20 SECC CSRs (2.1 V2G20Certificate, after TriggerMessage SignV2G20Certificate)
        cas[CertificateUse.V2G20] = v2g20_ca
    signer = LocalCaSigner(pki, cas=cas)  # opens the CA keys now: a wrong passphrase stops here
    if issuers is not None:
        issuers.append(pki.ca_certificate(ca_name))
    inventory = open_inventory(inventory_path or inventory_location(pki_dir))
    closers.append(inventory.close)
    cso = cso_name or pki.config.network.get("cso_name") or None
    service = CertificateService(signer, cso_name=cso, stations=RegistryStations(registry, cso_name=cso),
                                 inventory=inventory, ledger=pki.ledger)
    return CsrSigning(service)


def _add_status() -> None:
    from ocppsec.cli.gateway_status import status

    gateway.add_command(status)


_add_status()
