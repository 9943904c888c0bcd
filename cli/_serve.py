"""Running one of our asyncio servers from a command: the ``--loop`` choice, signals, exit codes.

Ctrl-C (SIGINT) stops the server gracefully, prints ``interrupted`` and exits 130 (the shell's code for
an interrupted command; click would turn a KeyboardInterrupt into "aborted", exit 1); SIGTERM stops it
gracefully and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from ocppsec.pki.errors import UsageError

__all__ = ["loop_option", "loop_runner", "serve_until_signal"]

_F = TypeVar("_F", bound=Callable[..., Any])


def loop_option(func: _F) -> _F:
    return click.option(
        "--loop", "loop_name", type=click.Choice(["auto", "uvloop", "asyncio"]), default="auto", show_default=True,
        help="event loop: uvloop (compiled, less CPU per request) when installed, else asyncio's",
    )(func)


def loop_runner(name: str) -> Callable[[Coroutine[Any, Any, Any]], Any]:
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


async def _serve(start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]],
                 ready: Callable[[], None]) -> int | None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        await start()
        try:
            ready()
            await stopping.wait()
        finally:
            await stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return received[0] if received else None


def serve_until_signal(loop_name: str, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]],
                       ready: Callable[[], None]) -> None:
    """Run ``start``, call ``ready``, wait for SIGINT or SIGTERM, run ``stop``; after SIGINT exit 130."""
    received = loop_runner(loop_name)(_serve(start, stop, ready))
    if received == signal.SIGINT:
        click.echo("interrupted", err=True)
        raise SystemExit(130)
