"""Benchmark: the ``ocppsec`` command as a whole process, against Python itself and the nearest ``openssl``.

Usage: ``python benchmarks/cli.py [--rounds 15] [--large] [--only help,verify,issue,fw-verify,fw-sign]
[--variant LABEL=CHECKOUT]``

Pairs measured in the same run, in alternating order (each round runs every command of a group once,
the order rotated), whole process from fork to exit (interpreter start, imports, key loading, I/O):

=========================  ===================================================================
ocppsec --help             python3 -c pass; python3 -c "import click"
ocppsec pki verify         openssl verify -CAfile root.pem chain.pem
ocppsec pki issue          openssl x509 -req (one CSR, the same encrypted CA key)
ocppsec firmware verify    openssl dgst -sha256 -verify (1 MiB image)
ocppsec firmware sign      openssl dgst -sha256 -sign (16 MiB, 256 MiB; 1 GiB with --large)
=========================  ===================================================================

``ocppsec`` is this checkout as the README's ``pip install .`` installs it (a wheel into a venv in the
work directory, with this interpreter's dependencies); the rows ``ocppsec[editable]`` run this venv's
console script, whose editable-install finder adds about 25 ms of imports to every start (``--editable``
measures that one only). Images are read once before their group, so every run hashes from the page cache. Bytecode is
written (to a cache directory in the work directory) and used, as for an installed package, even when
``PYTHONDONTWRITEBYTECODE`` is set: a checkout without ``.pyc`` files compiles every module on every run. Reported per
command: median wall time, median CPU (user + system) and peak RSS of the process. Ratios: for the
openssl pairs ``openssl time / ocppsec time`` (1.0 = as fast as openssl, higher is faster); for
``--help`` ``ocppsec time / baseline time`` (1.0 = as fast as the baseline, lower is faster). Goals:
``ocppsec --help`` within 1.5x of ``python3 -c "import click"``; ``firmware sign`` of 256 MiB at
>= 0.9x ``openssl dgst -sha256 -sign``. The machine's load average is printed before and after; on a
shared machine only ratios from one run mean anything. The last line is one JSON object.

``--variant before=/path/to/other/checkout`` adds, to every group, the same ocppsec command run from
that source checkout and from this one through one launcher (``python -S`` with the package tree and
site-packages on ``sys.path``; no console script, no editable-install finder), for before/after figures
in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import print_table

PASS = "benchmark passphrase"
EDITABLE = str(Path(sys.executable).with_name("ocppsec"))  # this venv's console script (an editable install)
OCPPSEC = EDITABLE  # replaced in main() by the console script of a `pip install .` (unless --editable)
PY = sys.executable


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_kib: int = 0


def peak_rss_kib(argv: Sequence[str], env: dict[str, str], cwd: Path) -> int:
    """Peak RSS of one run, measured by GNU time (a child's own ru_maxrss would include the pages of this
    process it was forked from); 0 without /usr/bin/time."""
    if not os.path.exists("/usr/bin/time"):
        return 0
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(proc.stderr.strip().splitlines()[-1])


def run_once(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(group: dict[str, list[str]], rounds: int, env: dict[str, str], cwd: Path) -> dict[str, Sample]:
    """Every command of ``group`` once per round, the starting command rotated each round."""
    names = list(group)
    samples = {name: Sample() for name in names}
    for name in names:  # one unmeasured run each (page cache, bytecode), under GNU time for the peak RSS
        samples[name].rss_kib = peak_rss_kib(group[name], env, cwd)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            wall, cpu = run_once(group[name], env, cwd)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
    return samples


def package_tree(checkout: Path, into: Path) -> Path:
    """An importable ``ocppsec`` tree (symbolic links) for a source checkout laid out as this one."""
    import tomllib

    mapping = tomllib.loads((checkout / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items()):
        target = into.joinpath(*package.split("."))
        if "." not in package:
            # the top package is a real folder of links to its files: a link to the checkout's folder would
            # put the subpackages' links below inside the checkout itself
            target.mkdir(parents=True, exist_ok=True)
            for item in (checkout / folder).iterdir():
                if item.is_file() and not target.joinpath(item.name).exists():
                    target.joinpath(item.name).symlink_to(item)
            continue
        if target.parent.is_symlink() or not target.parent.is_dir():
            continue  # inside a linked folder already (a nested package), or its parent is not ours
        if not target.exists():
            target.symlink_to(checkout / folder, target_is_directory=True)
    return into


def installed(checkout: Path, into: Path) -> str:
    """The ``ocppsec`` console script of ``pip install CHECKOUT`` into a new venv at ``into``.

    What a user gets from the README's ``pip install .``: a wheel built and installed, bytecode compiled,
    no editable-install finder (which this venv's ``pip install -e`` adds to every start: ~25 ms of
    imports in ``site``). The dependencies are this interpreter's, through a ``.pth`` line (its own
    ``.pth`` files, the editable finder among them, are not run).
    """
    import site
    import venv

    script = into / "bin" / "ocppsec"
    if not script.exists():
        venv.EnvBuilder(with_pip=False).create(into)
        purelib = subprocess.run([str(into / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        Path(purelib, "ocppsec-bench-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        subprocess.run([sys.executable, "-m", "pip", "--python", str(into / "bin" / "python"), "install", "-q",
                        "--no-deps", "--disable-pip-version-check", str(checkout)],
                       check=True, cwd=into, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    return str(script)


def launcher(tree: Path) -> list[str]:
    """``python -S -c ...`` running ``ocppsec`` from ``tree`` with this interpreter's site-packages."""
    import site

    paths = [str(tree), *site.getsitepackages()]
    code = f"import sys; sys.path[:0] = {paths!r}; from ocppsec.cli.main import main; sys.argv[0] = 'ocppsec'; main()"
    return [PY, "-S", "-c", code]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def build(root: Path) -> dict[str, Path]:
    """A PKI directory and the files the commands read."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ocppsec.pki.csr import make_csr
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import HierarchyConfig
    from ocppsec.pki.keys import KeySpec, generate_key
    from ocppsec.pki.pem import certificates_to_pem
    from ocppsec.pki.profiles import PROFILES

    now = datetime.now(UTC)
    config = HierarchyConfig.default(cso_name="Bench CSO", csms_fqdn="csms.bench.test")
    pki = PkiDirectory.init(root / "pki", config, passphrase=PASS.encode(), at=now - timedelta(days=1))
    files: dict[str, Path] = {"pki": root / "pki"}
    try:
        def put(name: str, data: bytes) -> None:
            files[name] = root / name
            files[name].write_bytes(data)

        csr = make_csr(generate_key(KeySpec.P256), {"O": "Bench CSO", "CN": "CS-BENCH"}, PROFILES["charging-station"])
        put("csr.pem", csr.public_bytes(Encoding.PEM))
        issued = pki.issue_from_csr(csr, ca="csms-root", at=now, ctx=pki.policy_context(expected_cn="CS-BENCH"))
        put("chain.pem", issued.chain_pem().encode())
        put("root.pem", certificates_to_pem([pki.ca_certificate("csms-root")]).encode())
        put("ca.key", (root / "pki" / "keys" / "csms-root.key.pem").read_bytes())
        fw = pki.chain_of("firmware-signing")[0]
        put("fw.pem", certificates_to_pem([fw]).encode())
        put("fw-pub.pem", fw.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
        put("fw.key", (root / "pki" / "keys" / "firmware-signing.key.pem").read_bytes())
        put("mf-root.pem", certificates_to_pem([pki.ca_certificate("manufacturer-root")]).encode())
    finally:
        pki.close()
    return files


def image(root: Path, mib: int) -> Path:
    path = root / f"image-{mib}MiB.bin"
    if not path.exists():
        block = os.urandom(1 << 20)
        with path.open("wb") as fh:
            for _ in range(mib):
                fh.write(block)
    with path.open("rb") as fh:  # into the page cache
        while fh.read(8 << 20):
            pass
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds for the small commands (images: fewer)")
    parser.add_argument("--large", action="store_true", help="also firmware sign of a 1 GiB image")
    parser.add_argument("--only", default="help,verify,issue,fw-verify,fw-sign", help="groups to run")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary directory)")
    parser.add_argument("--variant", metavar="LABEL=CHECKOUT", help="also run ocppsec from another source checkout")
    parser.add_argument("--editable", action="store_true",
                        help="measure this venv's console script instead of a `pip install .` of this checkout")
    args = parser.parse_args()
    global OCPPSEC
    groups = set(args.only.split(","))
    if shutil.which("openssl") is None:
        raise SystemExit("openssl is needed")
    load_before = os.getloadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ocppsec-bench-cli-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}
    env.pop("OCPPSEC_DEBUG", None)
    # Bytecode as an installed package has it (pip compiles at install), kept out of the checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    files = build(workdir)
    f = {k: str(v) for k, v in files.items()}
    rows: list[list[object]] = []
    result: dict[str, object] = {"rounds": args.rounds, "cpus": os.cpu_count(), "python": sys.version.split()[0],
                                 "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True,
                                                           check=True).stdout.strip()}
    figures: dict[str, dict[str, float]] = {}
    ratios: dict[str, float] = {}
    variants: dict[str, list[str]] = {}
    if not args.editable:
        OCPPSEC = installed(Path(__file__).resolve().parents[1], workdir / "installed")
        variants["ocppsec[editable]"] = [EDITABLE]
    result["ocppsec"] = "editable install (this venv)" if args.editable else "pip install . (a venv in the work directory)"
    if args.variant:
        label, _, checkout = args.variant.partition("=")
        variants[f"ocppsec[{label}, -S]"] = launcher(package_tree(Path(checkout).resolve(), workdir / f"tree-{label}"))
        variants["ocppsec[this, -S]"] = launcher(package_tree(Path(__file__).resolve().parents[1], workdir / "tree-this"))

    def with_variants(group: dict[str, list[str]], ours: str) -> dict[str, list[str]]:
        """``group`` plus the variants of its ocppsec command (same arguments)."""
        rest = group[ours][1:]
        return {**group, **{name: [*argv, *rest] for name, argv in variants.items()}}

    def record(label: str, samples: dict[str, Sample], ours: str, baseline: str, *, lower_is_better_ratio: bool) -> float:
        for name, s in samples.items():
            figures[f"{label}/{name}"] = {"wall_ms": round(median_ms(s.wall), 2), "cpu_ms": round(median_ms(s.cpu), 2),
                                          "rss_kib": s.rss_kib}
            rows.append([label, name, median_ms(s.wall), median_ms(s.cpu), s.rss_kib // 1024])
        a, b = statistics.median(samples[ours].wall), statistics.median(samples[baseline].wall)
        ratio = a / b if lower_is_better_ratio else b / a
        ratios[f"{label}: {ours} vs {baseline}"] = round(ratio, 3)
        for name in variants:
            if name in samples:
                v = statistics.median(samples[name].wall)
                ratios[f"{label}: {name} vs {baseline}"] = round(v / b if lower_is_better_ratio else b / v, 3)
        return ratio

    help_ratio = sign_ratio = None
    if "help" in groups:
        s = measure(with_variants({"ocppsec --help": [OCPPSEC, "--help"], "python3 -c pass": [PY, "-c", "pass"],
                                   'python3 -c "import click"': [PY, "-c", "import click"]}, "ocppsec --help"),
                    args.rounds, env, workdir)
        record("start-up", s, "ocppsec --help", "python3 -c pass", lower_is_better_ratio=True)
        help_ratio = statistics.median(s["ocppsec --help"].wall) / statistics.median(s['python3 -c "import click"'].wall)
        ratios['start-up: ocppsec --help vs python3 -c "import click"'] = round(help_ratio, 3)
    if "verify" in groups:
        s = measure(with_variants({"ocppsec pki verify": [OCPPSEC, "pki", "verify", f["chain.pem"], "--trust", f["root.pem"]],
                                   "openssl verify": ["openssl", "verify", "-CAfile", f["root.pem"], f["chain.pem"]]},
                                  "ocppsec pki verify"), args.rounds, env, workdir)
        record("pki verify", s, "ocppsec pki verify", "openssl verify", lower_is_better_ratio=False)
    if "issue" in groups:
        out = workdir / "issued.pem"
        s = measure({"ocppsec pki issue": [OCPPSEC, "pki", "issue", f["pki"], "--ca", "csms-root", "--csr", f["csr.pem"],
                                           "--expected-cn", "CS-BENCH", "--out", str(out)],
                     "openssl x509 -req": ["openssl", "x509", "-req", "-in", f["csr.pem"], "-CA", f["root.pem"],
                                           "-CAkey", f["ca.key"], "-passin", "env:OCPPSEC_PASSPHRASE", "-days", "365",
                                           "-sha256", "-set_serial", "0x" + os.urandom(8).hex(), "-out", str(out)]},
                    args.rounds, env, workdir)
        record("pki issue", s, "ocppsec pki issue", "openssl x509 -req", lower_is_better_ratio=False)
    if "fw-verify" in groups:
        img = image(workdir, 1)
        sig_b64, sig_der = workdir / "1MiB.sig", workdir / "1MiB.der"
        signed = subprocess.run([OCPPSEC, "firmware", "sign", str(img), "--key", f["fw.key"], "--cert", f["fw.pem"],
                                 "--out", str(sig_b64)], env=env, capture_output=True, check=True)
        assert signed.returncode == 0
        import base64

        sig_der.write_bytes(base64.b64decode(sig_b64.read_text()))
        s = measure({"ocppsec firmware verify": [OCPPSEC, "firmware", "verify", str(img), "--signature-file", str(sig_b64),
                                                 "--cert", f["fw.pem"], "--root", f["mf-root.pem"]],
                     "openssl dgst -verify": ["openssl", "dgst", "-sha256", "-verify", f["fw-pub.pem"], "-signature",
                                              str(sig_der), str(img)]}, args.rounds, env, workdir)
        record("firmware verify 1 MiB", s, "ocppsec firmware verify", "openssl dgst -verify", lower_is_better_ratio=False)
    if "fw-sign" in groups:
        sizes = [(16, max(5, args.rounds // 2)), (256, max(5, args.rounds // 3))] + ([(1024, 3)] if args.large else [])
        for mib, rounds in sizes:
            img = image(workdir, mib)
            s = measure(with_variants({
                "ocppsec firmware sign": [OCPPSEC, "firmware", "sign", str(img), "--key", f["fw.key"], "--cert",
                                          f["fw.pem"], "--out", str(workdir / "sig.b64")],
                "openssl dgst -sign": ["openssl", "dgst", "-sha256", "-sign", f["fw.key"], "-passin",
                                       "env:OCPPSEC_PASSPHRASE", "-out", str(workdir / "sig.der"), str(img)]},
                "ocppsec firmware sign"), rounds, env, workdir)
            ratio = record(f"firmware sign {mib} MiB", s, "ocppsec firmware sign", "openssl dgst -sign",
                           lower_is_better_ratio=False)
            if mib == 256:
                sign_ratio = ratio
            if mib >= 256:
                img.unlink()
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")
    print_table(["group", "command", "wall ms (median)", "cpu ms (median)", "peak RSS MiB"], rows)
    print()
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}")
    goals = {}
    if help_ratio is not None:
        goals["ocppsec --help within 1.5x of python3 -c 'import click'"] = {"ratio": round(help_ratio, 3), "goal": "<= 1.5",
                                                                          "pass": help_ratio <= 1.5}
    if sign_ratio is not None:
        goals["firmware sign 256 MiB at >= 0.9x openssl dgst -sha256 -sign"] = {"ratio": round(sign_ratio, 3),
                                                                               "goal": ">= 0.9", "pass": sign_ratio >= 0.9}
    for name, goal in goals.items():
        print(f"goal: {name}: {goal['ratio']:.2f} ({'pass' if goal['pass'] else 'FAIL'})")
    result.update({"load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
                   "figures": figures, "ratios": ratios, "goals": goals})
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
