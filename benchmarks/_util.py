"""Small helpers shared by the benchmarks: a plain-text table and peak RSS from /proc."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` under ``headers`` as an aligned text table (numbers right-aligned)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for r in text:
        print(line(r))


def peak_rss_kib(pid: int | str = "self") -> int:
    """Peak resident set size (VmHWM) of a process in KiB; 0 when /proc has no answer."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for entry in fh:
                if entry.startswith("VmHWM:"):
                    return int(entry.split()[1])
    except OSError:
        pass
    return 0
