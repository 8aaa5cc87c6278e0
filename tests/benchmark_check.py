#!/usr/bin/env python3
"""On-demand benchmark: `kvmprep check --format json` against `virt-host-validate qemu`.

Runs both alternately on this machine (so both see the same load and cache
state), prints each median wall time, the ratio, and how many checks each
ran. Not a test: run it by hand after installing the project:

    .venv/bin/python tests/benchmark_check.py [--rounds 21] [--profile generic]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--profile", default="generic")
    args = ap.parse_args()

    exe = os.path.join(os.path.dirname(sys.executable), "kvmprep")
    kvmprep = [exe] if os.path.exists(exe) else [sys.executable, "-m", "app"]
    kvmprep += ["check", "--format", "json", "--profile", args.profile]
    vhv_path = shutil.which("virt-host-validate")
    if not vhv_path:
        print("virt-host-validate is not installed (apt-get install libvirt-clients)", file=sys.stderr)
        return 2
    vhv = [vhv_path, "qemu"]

    # warm both (page cache, pyc files)
    _, doc_text = timed(kvmprep)
    _, vhv_text = timed(vhv)
    ours, theirs = [], []
    for _ in range(args.rounds):
        ours.append(timed(kvmprep)[0])
        theirs.append(timed(vhv)[0])

    n_ours = len(json.loads(doc_text)["checks"])
    n_theirs = sum(1 for line in vhv_text.splitlines() if ": " in line and "Checking" in line)
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"rounds:                    {args.rounds} (alternating)")
    print(f"kvmprep check --format json: median {m_ours * 1000:7.1f} ms  ({n_ours} checks, profile {args.profile})")
    print(f"virt-host-validate qemu:     median {m_theirs * 1000:7.1f} ms  ({n_theirs} checks)")
    print(f"ratio:                       {m_ours / m_theirs:5.2f}x the time, {n_ours / max(n_theirs, 1):4.1f}x the checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
