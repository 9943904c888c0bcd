"""``ocppsec stations``: manage the station registry the gateway and ``serve()`` authenticate against.

Passwords are never taken as command-line arguments (they would land in shell history and ``ps``): give
them through an environment variable (``--password-from-env VAR``) or let ``--generate`` make a random
one, printed once. Only a salted scrypt hash is stored.

A given password must follow the OCPP password rules of ``--ocpp-version``: for 2.0.1 those of the 2025
errata by default (16-64 characters, any UTF-8, as 2.1), Edition 2's strict passwordString (16-40 of
a-z A-Z 0-9 ``* - _ = : + | @ .``) with ``--strict-password-rules``. Generated passwords satisfy both.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import click

from ocppsec.cli._common import echo_json, echo_table
from ocppsec.pki.errors import NotFoundError, UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import PasswordRules, generate_password, hash_password, verify_password_rules
from ocppsec.security_profiles.registry import (
    DEFAULT_REGISTRY,
    Onboarding,
    StationRecord,
    confirm_password,
    set_pending_password,
    set_profile,
    update_station,
)
from ocppsec.security_profiles.registry_sql import open_registry

__all__ = ["stations"]

_stations_option = click.option(
    "--stations", "stations_db", default=DEFAULT_REGISTRY, envvar="OCPPSEC_STATIONS", show_default=True,
    help="station registry: a SQLite path (shared safely by several gateways on one host) or a postgresql:// URL "
         "(shared by several hosts)",
)
_version_option = click.option(
    "--ocpp-version", "ocpp_version", default="2.0.1", show_default=True,
    help="whose password rules apply: 1.6 (AuthorizationKey, 16-20 bytes, as hex or text), 2.0.1 and 2.1 "
         "(16-64 characters of any UTF-8, per the 2025 errata)",
)
_strict_option = click.option(
    "--strict-password-rules", "strict", is_flag=True,
    help="2.0.1: Edition 2's passwordString instead of the 2025 errata (16-40 of a-z A-Z 0-9 * - _ = : + | @ .)",
)


def _password(env_var: str | None, generate: bool, version: OcppVersion, strict: bool) -> tuple[str, bool]:
    rules = PasswordRules.EDITION2 if strict else PasswordRules.ERRATA_2025
    if env_var and generate:
        raise UsageError("give either --password-from-env or --generate, not both")
    if generate:
        return generate_password(version, rules=rules), True
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise UsageError(f"environment variable {env_var} is not set", hint=f"export {env_var}=... first")
        verify_password_rules(value, version, rules=rules)
        return value, False
    raise UsageError("a password is needed", hint="pass --password-from-env VAR or --generate")


@click.group("stations")
def stations() -> None:
    """Register charging stations: identity, security profile, serial number, password hash."""


@stations.command("add")
@click.argument("identity")
@click.option("--password-from-env", "env_var", metavar="VAR", help="read the Basic-auth password from $VAR")
@click.option("--generate", is_flag=True, help="generate a random password and print it once")
@click.option("--serial", help="serial number the profile-3 certificate CN must carry (default: the identity)")
@click.option("--profile", type=click.IntRange(1, 3), default=2, show_default=True, help="registered security profile")
@click.option("--allow-profile-downgrade", "allow_downgrade", is_flag=True,
              help="the station's AllowSecurityProfileDowngrade is true: the gateway follows a change from profile 3 "
                   "to 2 (never to 1); the gateway also learns it when the CSMS sets it over OCPP")
@click.option("--onboarding", "onboarding_text", metavar="expired,factory|none",
              help="profile 3: the gateway (--onboarding) may renew this station's expired certificate of our CA "
                   "(A00.FR.429) or its factory certificate (A00.FR.806) in a renewal-only session")
@_version_option
@_strict_option
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def add(identity: str, env_var: str | None, generate: bool, serial: str | None, profile: int, allow_downgrade: bool,
        onboarding_text: str | None, ocpp_version: str, strict: bool, stations_db: str, as_json: bool) -> None:
    """Register station IDENTITY."""
    version = OcppVersion.parse(ocpp_version)
    password: str | None = None
    generated = False
    if profile in (1, 2) or env_var or generate:
        password, generated = _password(env_var, generate, version, strict)
    record = StationRecord(identity, profile, serial, hash_password(password) if password else None,
                           allow_downgrade=allow_downgrade, onboarding=Onboarding.parse(onboarding_text))
    registry = open_registry(stations_db)
    registry.add(record)
    out = {"identity": identity, "profile": profile, "serial": record.expected_serial, "registry": stations_db}
    if generated:
        out["password"] = password
    if as_json:
        echo_json(out)
        return
    click.echo(f"added {identity} (profile {profile}, serial {record.expected_serial})")
    if generated:
        click.echo(f"password: {password}")
        click.echo("(shown once; set it on the station, e.g. SecurityCtrlr.BasicAuthPassword / AuthorizationKey)", err=True)


@stations.command("show")
@click.argument("identity")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def show(identity: str, stations_db: str, as_json: bool) -> None:
    """Show what the registry holds of IDENTITY (never the password hashes)."""
    record = open_registry(stations_db).get(identity)
    if record is None:
        raise NotFoundError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
    data = _listed(record)
    if as_json:
        echo_json(data)
        return
    click.echo(f"identity:         {data['identity']}")
    click.echo(f"profile:          {data['profile']}" + (f" (and {data['pendingProfile']} pending, until the station "
                                                         "connects with it)" if data["pendingProfile"] else ""))
    click.echo(f"serial (CN):      {data['serial']}")
    click.echo(f"password:         {'set' if data['password'] else 'none'}"
               + (" (a new one pending)" if data["pendingPassword"] else ""))
    click.echo(f"downgrade 3 -> 2: {'allowed' if data['allowProfileDowngrade'] else 'forbidden'}")
    if data["networkPriority"] or data["slots"]:
        click.echo(f"network priority: {','.join(map(str, data['networkPriority'])) or '-'}")
        for slot in data["slots"]:
            click.echo(f"  slot {slot['slot']}: profile {slot['profile'] or '?'}"
                       + (f", username {slot['username']}" if slot["username"] else "")
                       + (", its own password" if slot["password"] else ""))


@stations.command("set-profile")
@click.argument("identity")
@click.argument("profile", type=click.IntRange(1, 3))
@click.option("--pending", is_flag=True,
              help="A05: accept PROFILE next to the registered one until the station connects with it (then only it)")
@click.option("--allow-downgrade", is_flag=True,
              help="the station's SecurityCtrlr.AllowSecurityProfileDowngrade is true (2.0.1 errata, 2.1): 3 -> 2 is "
                   "allowed, and this is recorded as `stations profile-downgrade --allow` would (default: what the "
                   "registry holds)")
@_version_option
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def set_profile_cmd(identity: str, profile: int, pending: bool, allow_downgrade: bool, ocpp_version: str,
                    stations_db: str, as_json: bool) -> None:
    """Change the security profile of IDENTITY under the A05 rules; its password and serial stay."""
    record = set_profile(open_registry(stations_db), identity, profile, pending=pending,
                         version=OcppVersion.parse(ocpp_version), allow_downgrade=True if allow_downgrade else None)
    if as_json:
        echo_json(_listed(record))
    elif pending:
        click.echo(f"{identity}: profile {profile} accepted next to {record.profile} until the station connects with it")
    else:
        click.echo(f"{identity}: profile {record.profile}")


@stations.command("update")
@click.argument("identity")
@click.option("--serial", help="serial number the profile-3 certificate CN must carry")
@click.option("--clear-serial", is_flag=True, help="the CN must carry the identity itself again")
@click.option("--discard-pending-profile", is_flag=True, help="drop a pending profile change")
@click.option("--discard-pending-password", is_flag=True, help="drop a pending password (A01.FR.04: keep the old one)")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def update(identity: str, serial: str | None, clear_serial: bool, discard_pending_profile: bool,
           discard_pending_password: bool, stations_db: str, as_json: bool) -> None:
    """Change the serial of IDENTITY, or drop its pending profile or password; nothing else changes."""
    if serial is None and not (clear_serial or discard_pending_profile or discard_pending_password):
        raise UsageError("nothing to update", hint="pass --serial, --clear-serial or --discard-pending-...; "
                                                   "profile: `stations set-profile`, password: `stations set-password`")
    record = update_station(open_registry(stations_db), identity, serial=serial, clear_serial=clear_serial,
                            discard_pending_profile=discard_pending_profile,
                            discard_pending_password=discard_pending_password)
    if as_json:
        echo_json(_listed(record))
    else:
        click.echo(f"updated {identity} (profile {record.profile}, serial {record.expected_serial})")


@stations.command("list")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def list_(stations_db: str, as_json: bool) -> None:
    """List registered stations (never the password hashes)."""
    rows = open_registry(stations_db).list()
    if as_json:
        echo_json([_listed(r) for r in rows])
        return
    echo_table(["identity", "profile", "serial", "password", "pending", "downgrade", "slots"],
               [[r.identity, r.profile, r.expected_serial, "set" if r.password_hash else "-",
                 ", ".join(x for x, on in (("password", r.pending_password_hash), (f"profile {r.pending_profile}",
                                                                                r.pending_profile)) if on) or "-",
                 "3->2" if r.allow_downgrade else "-",
                 " ".join(f"{s.slot}:{s.profile or '?'}{'*' if s.username or s.password_hash else ''}"
                          for s in r.network.slots) or "-"]
                for r in rows])


def _listed(r: StationRecord) -> dict[str, Any]:
    """One station for ``list --json`` (never a hash: only whether one is set)."""
    return {"identity": r.identity, "profile": r.profile, "pendingProfile": r.pending_profile,
            "serial": r.expected_serial, "password": bool(r.password_hash),
            "pendingPassword": bool(r.pending_password_hash), "allowProfileDowngrade": r.allow_downgrade,
            "networkPriority": list(r.network.priority),
            "slots": [{"slot": s.slot, "profile": s.profile, "username": s.username, "password": bool(s.password_hash)}
                      for s in r.network.slots],
            **({"onboarding": sorted(k.value for k in r.onboarding)} if r.onboarding else {})}


@stations.command("set-password")
@click.argument("identity")
@click.option("--password-from-env", "env_var", metavar="VAR", help="read the new password from $VAR")
@click.option("--generate", is_flag=True, help="generate a random password and print it once")
@click.option("--pending", is_flag=True,
              help="A01 rotation: accept the new password next to the old one until `confirm-password` "
                   "(or the station's first login with it)")
@_version_option
@_strict_option
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def set_password(identity: str, env_var: str | None, generate: bool, pending: bool, ocpp_version: str, strict: bool,
                 stations_db: str, as_json: bool) -> None:
    """Set (or, with --pending, start rotating) the password of IDENTITY."""
    password, generated = _password(env_var, generate, OcppVersion.parse(ocpp_version), strict)
    registry = open_registry(stations_db)
    if pending:
        set_pending_password(registry, identity, hash_password(password))
    else:
        record = registry.get(identity)
        if record is None:
            raise UsageError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
        registry.update(replace(record, password_hash=hash_password(password), pending_password_hash=None))
    if as_json:
        echo_json({"identity": identity, "pending": pending, **({"password": password} if generated else {})})
        return
    click.echo(f"{'pending ' if pending else ''}password set for {identity}")
    if generated:
        click.echo(f"password: {password}")


@stations.command("confirm-password")
@click.argument("identity")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def confirm(identity: str, stations_db: str, as_json: bool) -> None:
    """The station accepted its new password: from now on only the new one works (A01.FR.03)."""
    confirm_password(open_registry(stations_db), identity)
    if as_json:
        echo_json({"identity": identity, "confirmed": True})
        return
    click.echo(f"password of {identity} confirmed; the old one no longer works")


@stations.command("profile-downgrade")
@click.argument("identity")
@click.option("--allow/--forbid", "allow", required=True,
              help="whether the station's AllowSecurityProfileDowngrade is true (3 -> 2 followed; never to 1)")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def profile_downgrade(identity: str, allow: bool, stations_db: str, as_json: bool) -> None:
    """Record whether station IDENTITY may go from profile 3 down to 2 (A05.FR.08)."""
    registry = open_registry(stations_db)
    record = registry.get(identity)
    if record is None:
        raise UsageError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
    registry.update(replace(record, allow_downgrade=allow))
    if as_json:
        echo_json({"identity": identity, "allow_downgrade": allow})
        return
    click.echo(f"{identity}: profile downgrade 3 -> 2 {'allowed' if allow else 'forbidden'}")


@stations.command("onboarding")
@click.argument("identity")
@click.argument("kinds", metavar="expired,factory|none")
@_stations_option
def onboarding(identity: str, kinds: str, stations_db: str) -> None:
    """Set which certificates station IDENTITY may be onboarded with (renewal-only session; see `gateway --onboarding`)."""
    registry = open_registry(stations_db)
    record = registry.get(identity)
    if record is None:
        raise UsageError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
    allowed = Onboarding.parse(kinds)
    registry.update(replace(record, onboarding=allowed))
    click.echo(f"{identity}: onboarding {Onboarding.text(allowed) or 'none'}")


@stations.command("remove")
@click.argument("identity")
@_stations_option
@click.option("--json", "as_json", is_flag=True)
def remove(identity: str, stations_db: str, as_json: bool) -> None:
    """Remove station IDENTITY from the registry."""
    open_registry(stations_db).remove(identity)
    if as_json:
        echo_json({"identity": identity, "removed": True})
        return
    click.echo(f"removed {identity}")
