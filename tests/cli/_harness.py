"""Running ``ocppsec`` in a forked child of the test process: fast (every module is imported already),
isolated (module state, environment, a hang is killed) and, on request, as the unprivileged user ``nobody``.

:func:`invoke` returns what the command printed and its exit code, as a shell would see them.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import pwd
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocppsec.cli.main import main

__all__ = ["Result", "assert_one_line_error", "invoke"]



@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json_error(self) -> dict[str, Any]:
        """The JSON error object, checking it is the only thing on stdout."""
        data = json.loads(self.out)
        assert isinstance(data, dict) and set(data) == {"error"}, self.out
        error = data["error"]
        assert set(error) == {"type", "message", "hint", "exit_code", "requirement", "security_event"}, error
        assert error["exit_code"] == self.code
        return error  # type: ignore[no-any-return]


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _child(args: list[str], env: dict[str, str], as_nobody: bool, warm_up: list[str] | None, answer: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        if as_nobody:
            if warm_up is not None:
                # The interpreter's own files may be private to root (pyenv in /root): the same command with
                # a missing file first, as root, imports what the unprivileged run will need.
                sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
                _run(warm_up)
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        sys.stdout, sys.stderr = out, err
        sys.stdin = io.StringIO("")
        code = _run(args)
    except BaseException as exc:
        err.write(f"ESCAPED main(): {type(exc).__name__}: {exc}\n")
        code = 99
    finally:
        answer.send((code, out.getvalue(), err.getvalue()))
        os._exit(0)


def invoke(*args: str | os.PathLike[str], env: dict[str, str] | None = None, unset: Sequence[str] = (),
           as_nobody: bool = False, warm_up: list[str] | None = None, timeout: float = 60) -> Result:
    """``ocppsec ARGS`` in a forked child; ``env`` adds to the environment, ``unset`` removes from it
    (``OCPPSEC_DEBUG`` is not passed on unless ``env`` sets it).

    ``as_nobody``: run as the unprivileged user, after running ``warm_up`` (the same command with a missing
    file instead of the unreadable one) as root."""
    environment = {k: v for k, v in os.environ.items() if k != "OCPPSEC_DEBUG"}
    environment.update(env or {})
    for name in unset:
        environment.pop(name, None)
    ctx = multiprocessing.get_context("fork")
    mine, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=([os.fspath(a) for a in args], environment, as_nobody, warm_up, theirs))
    child.start()
    theirs.close()
    try:
        if not mine.poll(timeout):
            raise AssertionError(f"ocppsec {' '.join(map(str, args))} did not finish within {timeout} s")
        code, out, err = mine.recv()
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    return Result(code, out, err)


def assert_one_line_error(result: Result, code: int, *needles: str) -> None:
    """Exit ``code``; stderr is ``error: ...`` on one line, optionally ``  hint: ...`` on a second; no
    traceback, no "internal error"; every needle appears."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.splitlines()
    assert lines and lines[0].startswith("error: "), result.err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), result.err
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    for needle in needles:
        assert needle in result.err, (needle, result.err)
