"""The ``ocppsec`` command: parses, builds adapters, calls the library, renders text or JSON.

Subcommand groups live in their own modules and are imported only when used (fast start-up, and a
group's optional dependencies are needed only by that group). Exit codes: 0 ok, 1 verification or
policy failure, 2 usage, 3 I/O or backend. Errors are printed as one line (plus a hint), never as a
traceback; set ``OCPPSEC_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import click

from ocppsec.pki.errors import OcppsecError

__all__ = ["cli", "main"]

# name -> "module:attribute"; each module holds one click group or command.
SUBCOMMANDS: dict[str, str] = {
    "campaign": "ocppsec.cli.campaign:campaign",
    "demo": "ocppsec.cli.demo:demo",
    "pki": "ocppsec.cli.pki:pki",
    "firmware": "ocppsec.cli.firmware:firmware",
    "gateway": "ocppsec.cli.gateway:gateway",
    "stations": "ocppsec.cli.stations:stations",
    "events": "ocppsec.cli.events:events",
    "ocsp": "ocppsec.cli.ocsp:ocsp",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; modules not shipped are not listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ocppsec")
def cli() -> None:
    """Security and PKI toolkit for OCPP 1.6-security, 2.0.1, 2.1 and ISO 15118 charging networks."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script: runs the CLI and turns every error into one line."""
    try:
        return cli.main(args=argv, prog_name="ocppsec", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except OcppsecError as exc:
        click.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if os.environ.get("OCPPSEC_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set OCPPSEC_DEBUG=1 for a traceback; please report it)",
            err=True,
        )
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    main()
