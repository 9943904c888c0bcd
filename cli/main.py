"""The ``ocppsec`` command: parses, builds adapters, calls the library, renders text or JSON.

Subcommand groups live in their own modules and are imported only when used: ``ocppsec --help`` lists
them from ``SUBCOMMANDS`` (in :mod:`ocppsec.cli._app`) without importing any (start-up cost, ADR 20), and a group's optional
dependencies are needed only by that group. The click group itself is :mod:`ocppsec.cli._app`; this
module imports click only inside :func:`main`, after ``firmware sign`` has started hashing its image in
the background (:mod:`ocppsec.cli._prefetch`).

The error contract lives here, in :func:`main`, and only here:

=====  ==========================================================================================
exit   when
=====  ==========================================================================================
0      success; also when the reader of stdout went away (``ocppsec pki profiles | head -1``)
1      verification or policy failure, malformed input (an :class:`OcppsecError` with exit code 1)
2      usage: bad arguments or configuration (click's usage errors, :class:`UsageError`)
3      I/O or backend: files, directories, ports, stores, tokens (:class:`StoreError`,
       :class:`BackendError`, :class:`FileError`, and any ``OSError`` a command lets through)
130    interrupted (Ctrl-C), in every command, servers included
=====  ==========================================================================================

Every failure is one line on stderr (``error: ...``, plus ``  hint: ...`` when there is one). With
``--json`` on the command line it is also exactly one JSON object on stdout::

    {"error": {"type": ..., "message": ..., "hint": ..., "exit_code": ..., "requirement": ...,
               "security_event": ...}}

Anything else escaping a command is a bug: ``internal error: ... please report it`` (exit 3), with the
traceback only when ``OCPPSEC_DEBUG`` is set.
"""

from __future__ import annotations

import os
import re
import select
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import click

    from ocppsec.cli._app import SUBCOMMANDS, LazyGroup, cli
    from ocppsec.pki.errors import OcppsecError

__all__ = ["SUBCOMMANDS", "LazyGroup", "cli", "main"]

DEBUG_ENV = "OCPPSEC_DEBUG"


def __getattr__(name: str) -> Any:
    """``cli``, ``LazyGroup`` and ``SUBCOMMANDS`` live in :mod:`ocppsec.cli._app` (importing this module does
    not import click)."""
    if name in ("cli", "LazyGroup", "SUBCOMMANDS"):
        from ocppsec.cli import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Failure:
    """What :func:`main` reports for one failure: one line (+ hint) on stderr, or the JSON error object."""

    def __init__(self, type_: str, message: str, exit_code: int, *, hint: str | None = None,
                 requirement: str | None = None, security_event: str | None = None, line: str | None = None) -> None:
        self.type = type_
        self.message = _one_line(message)
        self.line = _one_line(line) if line is not None else self.message
        self.exit_code = exit_code
        self.hint = _one_line(hint) if hint else None
        self.requirement = requirement
        self.security_event = security_event

    @classmethod
    def of(cls, exc: OcppsecError) -> _Failure:
        line = str(exc)  # with the requirement ID in front (or, for a PolicyError, every violation listed)
        prefix = f"[{exc.requirement}] "
        return cls(type(exc).__name__, line.removeprefix(prefix), exc.exit_code, hint=exc.hint,
                   requirement=exc.requirement, security_event=exc.security_event, line=line)

    def text(self) -> str:
        line = f"error: {self.line}"
        if self.security_event:
            line += f" (security event: {self.security_event})"
        return line + (f"\n  hint: {self.hint}" if self.hint else "")

    def as_json(self) -> str:
        import json

        return json.dumps({"error": {"type": self.type, "message": self.message, "hint": self.hint,
                                     "exit_code": self.exit_code, "requirement": self.requirement,
                                     "security_event": self.security_event}})  # = OcppsecError.to_json()


def _one_line(text: str) -> str:
    """Line breaks (from OpenSSL error stacks, multi-line causes) folded into one line."""
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` among the arguments (before a ``--``): the failure is printed as JSON on stdout too."""
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


def _usage_failure(exc: click.ClickException) -> _Failure:
    import click

    if isinstance(exc, click.BadParameter) and isinstance(getattr(exc.param, "type", None), click.Path):
        # click's own checks of a path option (it exists, is readable, is not a directory): the file system, exit 3
        return _Failure("FileError", exc.format_message(), 3, hint="check the path and its permissions")
    hint = None
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        hint = f"`{exc.ctx.command_path} --help` shows the usage"
    return _Failure("UsageError", exc.format_message(), 2 if isinstance(exc, click.UsageError) else exc.exit_code,
                    hint=hint)


def _os_failure(exc: OSError) -> _Failure:
    from ocppsec.pki._io import file_error

    return _Failure.of(file_error(exc, what="", action="use"))


def _stdout_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone away."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):  # no poll(), or stdout is not a file descriptor
        return True
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def _quiet_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so that the interpreter's final flush does
    not print "Exception ignored ... BrokenPipeError" (what Python's signal documentation recommends)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout already closed or not a file descriptor
        pass


def _fail(failure: _Failure, as_json: bool) -> NoReturn:
    try:
        if as_json:
            sys.stdout.write(failure.as_json() + "\n")
            sys.stdout.flush()
        sys.stderr.write(failure.text() + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        _quiet_stdout()
    sys.exit(failure.exit_code)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script: runs the CLI and turns every failure into one line (or JSON)."""
    import gc

    collecting = gc.isenabled()
    # Start-up makes many long-lived objects (modules, classes, click's parameters) and no garbage: the
    # collector runs dozens of times over them for nothing (20-30 ms of `firmware sign`). It is off until
    # the command's module is imported (LazyGroup._load turns it back on, before any command runs).
    gc.disable()
    try:
        return _main(argv)
    finally:
        (gc.enable if collecting else gc.disable)()  # as the caller had it (tests call main() in-process)


def _main(argv: list[str] | None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    if args[:2] == ["firmware", "sign"]:
        from ocppsec.cli import _prefetch

        _prefetch.start(args[2:])  # hash the image while click, pyca and the key load (ADR 20)
    import click

    from ocppsec.cli._app import StdoutClosed, cli
    from ocppsec.pki.errors import OcppsecError  # after the early start: it imports dataclasses, pathlib...

    as_json = _wants_json(args)
    try:
        result = cli.main(args=args, prog_name="ocppsec", standalone_mode=False)
        sys.stdout.flush()  # inside the try: a reader that went away is noticed here, not at interpreter exit
        return result
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            _fail(_Failure("Interrupted", "interrupted", 130), as_json)
        _fail(_Failure("Aborted", "aborted", 1), as_json)
    except click.ClickException as exc:
        _fail(_usage_failure(exc), as_json)
    except OcppsecError as exc:
        _fail(_Failure.of(exc), as_json)
    except KeyboardInterrupt:
        _fail(_Failure("Interrupted", "interrupted", 130), as_json)
    except (BrokenPipeError, StdoutClosed) as exc:
        if _stdout_gone():
            _quiet_stdout()
            sys.exit(0)
        broken = exc if isinstance(exc, BrokenPipeError) else exc.__cause__  # a socket, a pipe to a child...
        _fail(_os_failure(broken if isinstance(broken, OSError) else BrokenPipeError()), as_json)
    except OSError as exc:
        _fail(_os_failure(exc), as_json)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            import traceback

            traceback.print_exc()
        _fail(_Failure("InternalError", f"internal error: {type(exc).__name__}: {exc}", 3,
                       hint=f"this is a bug: please report it (set {DEBUG_ENV}=1 for a traceback)"), as_json)


if __name__ == "__main__":  # pragma: no cover
    main()
