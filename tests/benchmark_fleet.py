#!/usr/bin/env python3
"""On-demand benchmark: `kvmprep fleet` over 1000 hosts' reports, end to end.

Builds three throwaway roots from the CPU fixtures (tests/fleetroots.py), has
`kvmprep check --format json --root R` write their real reports, then makes
1000 varied copies: each its own hostname, addresses and machine id; a few
with another kernel, a few whose CPU lacks AVX-512, a few with a newer QEMU.
Times the whole command (start-up, reading and validating 1000 files, the
checks, the output) in both formats and prints the medians (target: under
1 s). Not a test: run it by hand after installing the project (a non-editable
install, see DEVELOPING.md: this sandbox writes no bytecode otherwise):

    .venv/bin/python tests/benchmark_fleet.py [--hosts 1000] [--rounds 11]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetroots import build_host, lab_profile, report  # noqa: E402

AVX512 = {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi",
          "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_vp2intersect"}


def base_reports(work: Path) -> list[dict]:
    profile = lab_profile(work)
    docs = []
    for i, (cpu, kernel) in enumerate([("x86_64-64cpu-linux6.2", "6.1.0-18-amd64"),
                                       ("x86_64-64cpu-linux6.2", "6.1.0-18-amd64"),
                                       ("x86_64-64cpu-linux6.2", "6.1.0-13-amd64")]):
        root = build_host(work / f"root{i}", name=f"base{i}", cpu=cpu, kernel=kernel, address=10 + i,
                          machine_id=f"{i:032x}")
        docs.append(report(root, work / f"base{i}.json", profile))
    return docs


def vary(base: list[dict], n: int, where: Path) -> list[str]:
    """n reports: base[i % 50 == 7 -> 2 (other kernel), else 0/1], with their own
    identity; every 40th lacks AVX-512, every 25th has QEMU 8.2."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        doc = copy.deepcopy(base[2 if i % 50 == 7 else i % 2])
        host = doc["host"]
        host["hostname"] = f"node-{i:04d}.dc1.example.net"
        host["machine_id"] = f"{i + 1:032x}"
        v4, v6 = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"fd00::{i + 1:x}"
        host["network"] = {"management": {"interface": "eth0", "address": v4},
                           "addresses": [{"interface": "eth0", "address": v4},
                                         {"interface": "eth0", "address": v6},
                                         {"interface": "virbr0", "address": "192.168.122.1"}]}
        host["packages"] = {"qemu": {"package": "qemu-system-x86",
                                     "version": "1:8.2.2+ds-0ubuntu1" if i % 25 == 3 else "1:7.2+dfsg-7+deb12u6"},
                            "libvirt": {"package": "libvirt-daemon-system", "version": "9.0.0-4+deb12u2"},
                            "installed": {}, "source": "/var/lib/dpkg/status"}
        if i % 40 == 5:
            host["cpu"]["flags"] = [f for f in host["cpu"]["flags"] if f not in AVX512]
            host["cpu"]["x86_64_level"] = 3
        p = where / f"node-{i:04d}.json"
        p.write_text(json.dumps(doc, indent=2))
        paths.append(str(p))
    return paths


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()

    exe = os.path.join(os.path.dirname(sys.executable), "kvmprep")
    kvmprep = [exe] if os.path.exists(exe) else [sys.executable, "-m", "app"]
    with tempfile.TemporaryDirectory(prefix="kvmprep-fleet-bench-") as tmp:
        work = Path(tmp)
        paths = vary(base_reports(work), args.hosts, work / "reports")
        size = sum(os.path.getsize(p) for p in paths)
        runs = {"json": [*kvmprep, "fleet", *paths, "--format", "json"], "table": [*kvmprep, "fleet", *paths]}
        for argv in runs.values():  # warm: page cache, bytecode
            _, out = timed(argv)
            if out.returncode not in (0, 1):
                print(out.stderr, file=sys.stderr)
                return 2
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, argv in runs.items():
                times[k].append(timed(argv)[0])
        doc = json.loads(timed(runs["json"])[1].stdout)
    print(f"reports:  {args.hosts} ({size / 1e6:.1f} MB, {len(doc['matrix']['checks'])} checks each); "
          f"rounds: {args.rounds} (alternating); {' '.join(kvmprep[:1])}")
    for k, ts in times.items():
        print(f"kvmprep fleet --format {k:<5}  median {statistics.median(ts) * 1000:7.1f} ms  "
              f"min {min(ts) * 1000:7.1f} ms")
    print("fleet checks: " + ", ".join(f"{r['id']} {r['status']}" for r in doc["fleet"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
