"""Run harnesses under atheris (libFuzzer) for a bounded time; new crashes go to ``findings/<name>/``.

    python -m tests.fuzz.run NAME [NAME ...] --seconds 60
    python -m tests.fuzz.run --all --seconds 10          # what scripts/test.sh runs in CI
    python -m tests.fuzz.run csr --runs 10000000 --workdir /tmp/csr-corpus   # a long campaign

Each harness runs in a child process (libFuzzer exits the process when it stops): the committed corpus
is read, new interesting inputs are written to a scratch folder (``--workdir`` keeps them), and
crashes, timeouts (> 1 s) and out-of-memory inputs are written to ``findings/<name>/``. At the end the
executions and executions per second of each harness are printed (libFuzzer's final stats), and the
exit status is 1 if any harness found something.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._harness import CORPUS, FINDINGS, harness_names

MAX_LEN = 16384  # the largest inputs the toolkit accepts are ~10 kB (CertificateSigned chains, log lines)
RSS_LIMIT_MB = 1024


@dataclass(frozen=True)
class Result:
    name: str
    executions: int
    seconds: float
    per_second: int  # libFuzzer's average over the fuzzing time (start-up excluded)
    status: int
    findings: list[Path]


def _child(name: str, libfuzzer_args: list[str]) -> None:
    """In the child: instrument ocppsec and the harness, then hand over to libFuzzer (never returns)."""
    import importlib

    import atheris

    with atheris.instrument_imports(include=["ocppsec", f"{__package__}.{name}", f"{__package__}._material"]):
        module = importlib.import_module(f"{__package__}.{name}")
    # Warm up outside libFuzzer's clock: harnesses build their material (keys, hierarchies) lazily on the
    # first input, which on a loaded machine takes longer than the 1 s per-input timeout. What the empty
    # input itself raises is of no interest here: libFuzzer feeds it again, timed, as its first input.
    with contextlib.suppress(Exception):
        module.TestOneInput(b"")
    atheris.Setup([sys.argv[0], *libfuzzer_args], module.TestOneInput)
    atheris.Fuzz()


_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_PER_SECOND = re.compile(rb"stat::average_exec_per_sec:\s*(\d+)")


def run_one(name: str, *, seconds: int | None, runs: int | None, workdir: Path | None, jobs_log: Path | None) -> Result:
    findings = FINDINGS / name
    findings.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        work = workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        args = [str(work), str(CORPUS / name), "-timeout=1", f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={MAX_LEN}",
                "-print_final_stats=1", f"-artifact_prefix={findings}/", "-close_fd_mask=1"]
        if seconds is not None:
            args.append(f"-max_total_time={seconds}")
        if runs is not None:
            args.append(f"-runs={runs}")
        cmd = [sys.executable, "-m", f"{__package__}.run", "--child", name, "--", *args]
        started = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                              cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONHASHSEED": "0"})
        elapsed = time.monotonic() - started
    if jobs_log is not None:
        jobs_log.write_bytes(proc.stderr)
    found = sorted(set(findings.iterdir()) - before)
    match = _EXECUTED.search(proc.stderr)
    executions = int(match.group(1)) if match else 0
    rate = _PER_SECOND.search(proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-4000:])
    return Result(name, executions, elapsed, int(rate.group(1)) if rate else 0, proc.returncode, found)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="harnesses to run (default with --all: every one)")
    parser.add_argument("--all", action="store_true", help="run every harness")
    parser.add_argument("--seconds", type=int, default=None, help="time per harness (libFuzzer -max_total_time)")
    parser.add_argument("--runs", type=int, default=None, help="executions per harness (libFuzzer -runs)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the grown corpus here (one harness)")
    parser.add_argument("--log", type=Path, default=None, help="write libFuzzer's output of the (one) harness here")
    opts = parser.parse_args(argv)
    names = harness_names() if opts.all or not opts.names else opts.names
    unknown = set(names) - set(harness_names())
    if unknown:
        parser.error(f"unknown harness(es) {', '.join(sorted(unknown))}; harnesses: {', '.join(harness_names())}")
    if opts.seconds is None and opts.runs is None:
        opts.seconds = 10
    results = []
    for name in names:
        result = run_one(name, seconds=opts.seconds, runs=opts.runs, workdir=opts.workdir, jobs_log=opts.log)
        results.append(result)
        state = "ok" if result.status == 0 and not result.findings else f"FOUND (exit {result.status})"
        print(f"fuzz {name:<14} {result.executions:>10} executions in {result.seconds:6.1f} s "
              f"({result.per_second:>6}/s)  {state}", flush=True)
        for path in result.findings:
            print(f"  finding: {path}", flush=True)
    total = sum(r.executions for r in results)
    failed = [r.name for r in results if r.status != 0 or r.findings]
    print(f"fuzz total: {total} executions; {'failures: ' + ', '.join(failed) if failed else 'no findings'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
