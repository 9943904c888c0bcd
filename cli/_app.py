"""The ``ocppsec`` click group: subcommands imported on first use, listed without importing them.

Kept apart from :mod:`ocppsec.cli.main` (the entry point and the error contract), which imports click
only after ``firmware sign`` has started hashing its image (ADR 20). A new command group is one more
line in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util

import click

__all__ = ["SUBCOMMANDS", "LazyGroup", "StdoutClosed", "cli"]

# name -> ("module:attribute", the first line of its help); each module holds one click group or command.
# The help is here so that `ocppsec --help` lists the commands without importing them (a test checks that it
# is the command's own first docstring line).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("ocppsec.cli.demo:demo",
             "Run the main job on embedded defaults: every hierarchy, a station certificate from a CSR, verified, used"),
    "pki": ("ocppsec.cli.pki:pki",
            "Certificate hierarchies of a charging network (OCPP CSO and manufacturer, ISO 15118 V2G/MO/OEM)."),
    "firmware": ("ocppsec.cli.firmware:firmware",
                 "Sign firmware images and verify signed firmware (OCPP L01, 1.6 SignedUpdateFirmware)."),
    "gateway": ("ocppsec.cli.gateway:gateway", "Terminate security profile 1, 2 or 3 in front of UPSTREAM."),
    "stations": ("ocppsec.cli.stations:stations",
                 "Register charging stations: identity, security profile, serial number, password hash."),
    "events": ("ocppsec.cli.events:events",
               "Security event log: query, tail, stats, export, and the GetLog upload receiver."),
    "ocsp": ("ocppsec.cli.ocsp:ocsp", "OCSP: answer certificate-status queries from the PKI ledger."),
    "campaign": ("ocppsec.cli.campaign:campaign",
                 "Renewal and root campaigns run by a gateway (`ocppsec gateway --campaigns DB`)."),
}


class StdoutClosed(Exception):
    """A write met EPIPE (click would turn that into exit 1); :func:`ocppsec.cli.main.main` decides."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; modules not shipped are not listed."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:  # click catches EPIPE itself and exits 1, even outside standalone mode
            raise StdoutClosed() from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._shipped(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`SUBCOMMANDS`: ``--help`` imports no command module."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, _shorten(SUBCOMMANDS[n][1], limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    @staticmethod
    def _shipped(name: str) -> bool:
        module_name = SUBCOMMANDS[name][0].split(":")[0]
        try:
            return importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:
            return False

    @staticmethod
    def _load(name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        gc.enable()  # main() turned the collector off for start-up; commands (servers too) run with it
        return command


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (``...`` marks the cut), as click does."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "..."


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ocppsec")
def cli() -> None:
    """Security and PKI toolkit for OCPP 1.6-security, 2.0.1, 2.1 and ISO 15118 charging networks."""


