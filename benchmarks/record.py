"""Run a progface command and keep its output with date, machine and commit.

    python benchmarks/record.py NAME -- progface bench --methods bilinear,bicubic --data DIR

writes ``benchmarks/results/NAME.md`` (the command, its stdout, wall time, peak memory, machine,
commit) so that every figure in the README can be traced to the command that made it.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    name, command = sys.argv[1], sys.argv[3:]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load = os.getloadavg()[0]
    text = [
        f"# {name}",
        "",
        f"- command: `{' '.join(command)}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- wall time {seconds:.0f} s, peak RSS {peak_mb:.0f} MB, load average at the end {load:.1f}",
        f"- exit code {proc.returncode}",
        "",
        proc.stdout.strip(),
        "",
    ]
    out = HERE / "results" / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(text))
    print(out.read_text())
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
