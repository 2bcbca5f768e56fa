"""Start-up time of the ``progface`` command line: wall time and what each command imports.

    python benchmarks/startup.py --ref before=2392c49 --ref after=HEAD --repeats 5 \\
        --json benchmarks/results/startup-20261202.json
    python benchmarks/startup.py             # this checkout as it is (uncommitted changes too)

Each command runs ``--repeats`` times in a fresh interpreter; the runs are interleaved round by
round over the commands and the code versions, so that a change of load on a shared machine
hits all of them alike. The table gives the median and range of wall times and the median CPU
time (user + system of the child, which a busy machine inflates less). One more run per
command and version says how many modules the command left in ``sys.modules`` and whether
torch and the built-in plugin modules (``progface.builtin.*``) were among them
(``-X importtime`` cannot: it misses modules loaded by ``importlib.import_module``, which is
how plugins are loaded). A ``--ref`` is the ``progface`` package of that commit (``git
archive``) put first on ``PYTHONPATH``, so the environment's installed ``progface`` never is
what gets timed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "from progface.cli import cli; cli(['--help'], prog_name='progface')"
COMMANDS = {  # label -> arguments of the Python interpreter
    "python -c pass (the interpreter alone)": ["-c", "pass"],
    "python -c 'import torch'": ["-c", "import torch"],
    "python -m progface --help": ["-m", "progface", "--help"],
    "python -m progface --version": ["-m", "progface", "--version"],
    "progface --help (what the console script runs)": ["-c", SCRIPT],
    "python -m progface weights dir": ["-m", "progface", "weights", "dir"],
    "python -m progface plugins (loads every plugin)": ["-m", "progface", "plugins"],
}

PROBE = """
import atexit, json, runpy, sys
def _dump(path=sys.argv[1]):
    with open(path, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(_dump)
args = sys.argv[2:]
if args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c"]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
"""


def _env(code: Path) -> dict[str, str]:
    # run with cwd=code.parent: ``-c`` and ``-m`` put the current folder first on sys.path
    env = {**os.environ, "PYTHONPATH": str(code)}
    for name in ("PROGFACE_DEBUG", "PROGFACE_DISABLED_PLUGINS", "PROGFACE_LOAD_PLUGINS"):
        env.pop(name, None)
    return env


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(code: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run; CPU time depends less on load."""
    started, cpu = time.perf_counter(), _cpu()
    subprocess.run(
        [sys.executable, *args], env=_env(code), check=True, capture_output=True, cwd=code.parent
    )
    return time.perf_counter() - started, _cpu() - cpu


def _imports(code: Path, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "modules.json"
        subprocess.run(
            [sys.executable, "-c", PROBE, str(path), *args],
            env=_env(code), capture_output=True, cwd=code.parent,
        )  # fmt: skip
        names = json.loads(path.read_text())
    return {
        "modules": len(names),
        "torch": "torch" in names,
        "builtin_plugins": [n for n in names if n.startswith("progface.builtin.")],
    }


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()


def _export(ref: str, into: Path) -> Path:
    """The ``progface`` package of commit ``ref`` in ``into`` (``git archive``)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "progface"], capture_output=True, cwd=ROOT, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", action="append", default=[], metavar="LABEL=COMMIT",
                        help="Time the progface package of COMMIT (repeatable).")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="Add this run to a JSON file (a list).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        codes: dict[str, tuple[str, Path]] = {}  # label -> (commit, folder on PYTHONPATH)
        for item in args.ref:
            label, _, ref = item.partition("=")
            commit = _git("rev-parse", "--short", ref)
            codes[label] = (commit, _export(commit, Path(tmp) / label / "code"))
        if not codes:
            dirty = " + uncommitted changes" if _git("status", "--porcelain", "progface") else ""
            codes["this checkout"] = (_git("rev-parse", "--short", "HEAD") + dirty, ROOT)
        jobs = [(label, name) for name in COMMANDS for label in codes]
        for label, name in jobs:  # one untimed run each: warm the file cache
            _run(codes[label][1], COMMANDS[name])
        times: dict[tuple[str, str], list[tuple[float, float]]] = {job: [] for job in jobs}
        for _ in range(args.repeats):
            for label, name in jobs:
                times[label, name].append(_run(codes[label][1], COMMANDS[name]))
        facts = {(label, name): _imports(codes[label][1], COMMANDS[name]) for label, name in jobs}
    import torch  # only for its version, after the timings

    run = {
        "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, {os.cpu_count()} cores",
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "codes": {
            label: {
                "commit": commit,
                "commands": {
                    name: {
                        "argv": ["python", *COMMANDS[name]],
                        "median_s": round(statistics.median(t for t, _ in times[label, name]), 3),
                        "min_s": round(min(t for t, _ in times[label, name]), 3),
                        "max_s": round(max(t for t, _ in times[label, name]), 3),
                        "cpu_median_s": round(
                            statistics.median(c for _, c in times[label, name]), 3
                        ),
                        **facts[label, name],
                    }
                    for name in COMMANDS
                },
            }
            for label, (commit, _) in codes.items()
        },
    }
    print(f"{run['date']}, {run['machine']}, Python {run['python']}, torch {run['torch']}, "
          f"load average at the end {run['load_average_at_end']}")  # fmt: skip
    print(f"wall seconds, median of {args.repeats} (min-max); CPU seconds (user + system), "
          "median; modules in sys.modules; torch imported; progface.builtin.* modules "
          "imported\n")  # fmt: skip
    labels = list(codes)
    print("| command | " + " | ".join(f"{label} ({codes[label][0]})" for label in labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for name in COMMANDS:
        cells = []
        for label in labels:
            row = run["codes"][label]["commands"][name]
            cells.append(
                f"{row['median_s']:.3f} ({row['min_s']:.3f}-{row['max_s']:.3f}); "
                f"CPU {row['cpu_median_s']:.3f}; "
                f"{row['modules']} modules; torch {'yes' if row['torch'] else 'no'}; "
                f"{len(row['builtin_plugins'])} built-in"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        runs = json.loads(args.json.read_text()) if args.json.is_file() else []
        args.json.write_text(json.dumps([*runs, run], indent=2) + "\n")


if __name__ == "__main__":
    main()
