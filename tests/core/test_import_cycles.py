"""The modules that other packages lean on (io, data, weights and the plugin core) each import
on their own, first, in a fresh interpreter: no import cycle hidden by the order in which the
test suite happens to import things. (All modules would take minutes: one torch import each.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import progface

PACKAGE = Path(progface.__file__).parent
SHARED = ("io", "data", "weights")


def test_every_module_imports_first_in_a_fresh_interpreter():
    modules = sorted(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for folder in SHARED
        for p in (PACKAGE / folder).glob("*.py")
    ) + ["progface.registry", "progface.plugins", "progface.hookspecs"]
    # a fresh child per module, a few at a time, importing nothing before it
    script = "import importlib, sys; importlib.import_module(sys.argv[1])"
    failed = {}
    procs = []
    for name in modules:
        procs.append((name, subprocess.Popen([sys.executable, "-c", script, name],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                             env={"PYTHONPATH": str(PACKAGE.parent),
                                                  "OMP_NUM_THREADS": "1"})))  # fmt: skip
        if len(procs) >= 4:
            _collect(procs.pop(0), failed)
    for proc in procs:
        _collect(proc, failed)
    assert not failed, failed


def _collect(item, failed: dict) -> None:
    name, proc = item
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        failed[name] = err.decode().strip().splitlines()[-1]
