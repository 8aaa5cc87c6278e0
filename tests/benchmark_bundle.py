#!/usr/bin/env python3
"""On-demand benchmark: start-up of ``kvmprep.pyz`` against the installed script.

Builds the wheel, installs it non-editable in a fresh venv (as
tests/installed.py does), bundles it with that install's ``kvmprep bundle``,
then runs each command alternately (same load, same page cache) and prints
the medians and the ratio. Not a test: run it by hand:

    .venv/bin/python tests/benchmark_bundle.py [--rounds 21] [--python python3.9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed import build_and_install  # noqa: E402


# what the bundle's __main__ does before it runs kvmprep: the cached copy of its tree
BOOT = """import sys, zipimport
boot = zipimport.zipimporter({pyz!r})
ns = {{"__file__": {pyz!r} + "/__main__.py", "__loader__": boot, "__name__": "kvmprep_boot"}}
exec(compile(boot.get_source("__main__"), ns["__file__"], "exec"), ns)
sys.path.insert(0, ns["extracted_tree"](ns["_manifest"]()) or {pyz!r})
"""


def timed(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--python", default=None,
                    help="the interpreter that runs the bundle (default: the venv's, so that both start the "
                         "same interpreter with the same site-packages hooks)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as on a server

    with tempfile.TemporaryDirectory() as tmp:
        env["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")  # the bundle's copy starts absent
        inst = build_and_install(Path(tmp))
        pyz = str(Path(tmp, "kvmprep.pyz"))
        subprocess.run([inst.script, "bundle", "-o", pyz], check=True, capture_output=True)
        size = os.path.getsize(pyz)
        args.python = args.python or inst.python
        first = timed([args.python, "-I", pyz, "--version"], env)
        print(f"first run (copies the tree into the cache): {first * 1000:.0f} ms")
        wizard = "import textual.app, textual.widgets, app.tui, " + ", ".join(
            f"screens.{n}" for n in ("welcome", "detection", "results", "fixes", "preview", "apply", "summary"))
        cases = {
            "--version": ([inst.script, "--version"], [args.python, "-I", pyz, "--version"]),
            "check --format json": ([inst.script, "check", "--format", "json"],
                                    [args.python, "-I", pyz, "check", "--format", "json"]),
            "wizard imports": ([inst.python, "-I", "-c", wizard],
                               [args.python, "-I", "-c", BOOT.format(pyz=pyz) + wizard]),
        }
        print(f"bundle: {size / 1e6:.1f} MB; rounds: {args.rounds} (alternating); bundle run by {args.python}")
        for name, (installed, bundled) in cases.items():
            timed(installed, env), timed(bundled, env)  # warm the page cache and the installed .pyc files
            a, b = [], []
            for _ in range(args.rounds):
                a.append(timed(installed, env))
                b.append(timed(bundled, env))
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{name:<20} installed script median {ma * 1000:6.1f} ms, bundle {mb * 1000:6.1f} ms: "
                  f"{mb / ma:4.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
