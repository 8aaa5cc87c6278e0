"""kvmprep fleet: real reports of throwaway hosts, then copies of them changed one
fact at a time, judged by the command an admin runs.

The hosts (tests/fleetroots.py) are roots with real CPUs' /proc/cpuinfo, real
dpkg/rpm databases and kernel address tables; their reports are what
``kvmprep check --format json --root R`` printed for them.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from fleetroots import TOP, build_host, kvmprep, lab_profile, report

# three identical Intel hosts (the i7-1165G7 fixture, Debian 12, QEMU 7.2)
SAME = {
    "node-a": dict(cpu="x86_64-64cpu-linux6.2", kernel="6.1.0-18-amd64", address=11, machine_id="a" * 32),
    "node-b": dict(cpu="x86_64-64cpu-linux6.2", kernel="6.1.0-18-amd64", address=12, machine_id="b" * 32),
    "node-c": dict(cpu="x86_64-64cpu-linux6.2", kernel="6.1.0-18-amd64", address=13, machine_id="c" * 32),
}
# and two others: an AMD EPYC 7451 with another kernel, an AlmaLinux 8 (rpm,
# QEMU 6.2) host on VirtualBox's Ivy Bridge without SSE4
OTHERS = {
    "node-d": dict(cpu="x86_64-epyc_7451", kernel="6.1.0-13-amd64", address=14, machine_id="d" * 32),
    "node-e": dict(cpu="vbox-win", kernel="4.18.0-513.el8.x86_64", address=15, machine_id="e" * 32, os_kind="el"),
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, deb_repo, rpm_repo):
    work = tmp_path_factory.mktemp("fleet")
    profile = lab_profile(work)
    docs, roots = {}, {}
    for name, spec in {**SAME, **OTHERS}.items():
        roots[name] = build_host(work / "roots" / name, name=name, deb_repo=deb_repo, rpm_repo=rpm_repo, **spec)
        docs[name] = report(roots[name], work / f"{name}.json", profile)
    return SimpleNamespace(dir=work, profile=profile, docs=docs, roots=roots)


def reports(fleet, where: Path, names, change=None) -> list[Path]:
    """Copies of the hosts' reports in ``where``; ``change(name, doc)`` edits one first."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        doc = copy.deepcopy(fleet.docs[name])
        if change:
            change(name, doc)
        p = where / f"{name}.json"
        p.write_text(json.dumps(doc))
        paths.append(p)
    return paths


def run_fleet(paths, *options):
    """(exit status, the JSON document, the table) of kvmprep fleet over ``paths``."""
    j = kvmprep("fleet", *paths, *options, "--format", "json")
    assert j.returncode in (0, 1), j.stderr
    t = kvmprep("fleet", *paths, *options)
    assert t.returncode == j.returncode, t.stderr
    return j.returncode, json.loads(j.stdout), t.stdout


def result(doc, fid):
    return next(r for r in doc["fleet"] if r["id"] == fid)


# ---- what a report carries ------------------------------------------------------

def test_a_report_carries_what_fleets_compare(fleet):
    a, e = fleet.docs["node-a"], fleet.docs["node-e"]
    assert a["format"] == 1
    cpu = a["host"]["cpu"]
    assert cpu["flags"] == sorted(cpu["flags"]) and {"avx512f", "vmx", "constant_tsc"} <= set(cpu["flags"])
    assert {"vmx", "ept", "vpid"} <= set(cpu["virt_flags"]) and "avx512f" not in cpu["virt_flags"]
    assert "posted_intr" in cpu["vmx_flags"]  # the kernel 6.2 "vmx flags" line, apart
    assert cpu["signature"] == {"family": 6, "model": 140, "stepping": 1}
    assert (cpu["vendor"], cpu["x86_64_level"]) == ("intel", 4)
    assert a["host"]["kernel"]["release"] == "6.1.0-18-amd64"
    pk = a["host"]["packages"]
    assert pk["qemu"] == {"package": "qemu-system-x86", "version": "1:7.2+dfsg-7+deb12u6"}
    assert pk["libvirt"] == {"package": "libvirt-daemon-system", "version": "9.0.0-4+deb12u2"}
    assert pk["installed"] == {"libvirt-daemon-system": "9.0.0-4+deb12u2", "qemu-system-x86": "1:7.2+dfsg-7+deb12u6"}
    assert pk["source"].endswith("/var/lib/dpkg/status")
    ek = e["host"]["packages"]  # rpm, asked with the packages check's rpm -q
    assert ek["qemu"] == {"package": "qemu-kvm", "version": "6.2.0-40.module_el8.9.0+3681+41cbbcc0"}
    assert ek["libvirt"]["package"] == "libvirt-daemon-kvm" and ek["libvirt"]["version"].startswith("8.0.0")
    net = a["host"]["network"]
    assert net["management"] == {"interface": "eth0", "address": "192.0.2.11"}
    assert {"interface": "eth0", "address": "fd00::b"} in net["addresses"]
    assert not any(x["address"].startswith(("127.", "fe80", "::1")) for x in net["addresses"])
    assert a["host"]["machine_id"] == "a" * 32


def test_rpm_is_asked_once_for_the_check_and_the_report(fleet):
    """packages.virtualization's rpm -q answers the report's package versions too."""
    from checks.facts import Facts
    from checks.host import Host
    from checks.profile import load_profile
    from checks.runner import run_checks

    calls = []

    class Counting(Host):
        def run(self, argv, *a, **kw):
            calls.append(list(argv))
            return super().run(argv, *a, **kw)

    host = Counting(fleet.roots["node-e"])
    rep = run_checks(host, load_profile("generic"), facts=Facts(host))
    before = [c for c in calls if c[0] == "rpm"]
    doc = rep.to_document()
    assert [c for c in calls if c[0] == "rpm"] == before  # nothing more for the report
    assert doc["host"]["packages"]["qemu"]["package"] == "qemu-kvm"
    assert any("qemu-kvm" in c for c in before)


def test_dpkg_names_are_looked_up_once_for_the_check_and_the_report(fleet, monkeypatch):
    from checks import pkgdb
    from checks.facts import Facts
    from checks.host import Host
    from checks.profile import load_profile
    from checks.runner import run_checks

    looked = []
    real = pkgdb._status_version
    monkeypatch.setattr(pkgdb, "_status_version", lambda data, name: looked.append(name) or real(data, name))
    host = Host(fleet.roots["node-a"])
    rep = run_checks(host, load_profile("generic"), facts=Facts(host))
    before = list(looked)
    assert rep.to_document()["host"]["packages"]["qemu"]["package"] == "qemu-system-x86"
    assert looked == before and len(before) == len(set(before))


def test_rpm_memo_asks_only_what_was_not_asked(fleet):
    from checks import pkgdb
    from checks.host import Host

    host = Host(fleet.roots["node-e"])
    seen = []
    real_run = host.run
    host.run = lambda argv, **kw: seen.append(list(argv)) or real_run(argv, **kw)
    first, _ = pkgdb.installed(host, "rpm", ["qemu-kvm", "libvirt", "virt-install"])
    again, _ = pkgdb.installed(host, "rpm", ["libvirt", "qemu-kvm"])
    more, _ = pkgdb.installed(host, "rpm", ["qemu-kvm", "libvirt-client"])
    assert again == {"libvirt": first["libvirt"], "qemu-kvm": first["qemu-kvm"]}
    assert more["libvirt-client"].startswith("8.0.0") and first["virt-install"] is None
    assert [argv[argv.index("--") + 1:] for argv in seen] == [["libvirt", "qemu-kvm", "virt-install"],
                                                             ["libvirt-client"]]


def test_the_check_path_does_not_import_the_fleet_engine():
    probe = ("import sys, io, contextlib\nfrom app.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['check', '--format', 'json'])\n"
             "print(sorted(m for m in sys.modules if m.startswith(('checks.fleet', 'app.fleet'))))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=TOP, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---- the verdicts ----------------------------------------------------------------

def test_identical_ready_hosts_make_a_ready_fleet(fleet, tmp_path):
    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME), "--profile", fleet.profile)
    assert rc == 0
    assert {r["id"]: r["status"] for r in doc["fleet"]} == {
        "fleet.same-kernel": "pass", "fleet.cpu-compatible": "pass", "fleet.versions": "pass",
        "fleet.unique-names": "pass", "fleet.unique-addresses": "pass", "fleet.unique-machine-ids": "pass"}
    cpu = result(doc, "fleet.cpu-compatible")
    assert cpu["data"]["x86_64_level"] == 4 and cpu["data"]["model"] == "Cascadelake-Server-noTSX"
    assert "host-model" in cpu["recommendation"] and "host-passthrough migrates too" in cpu["recommendation"]
    assert doc["summary"]["ready"] is True and doc["summary"]["ready_hosts"] == 3
    assert "Verdict: READY - all 3 hosts ready" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_another_kernel_fails_same_kernel_naming_the_host(fleet, tmp_path):
    def change(name, doc):
        if name == "node-c":
            doc["host"]["kernel"]["release"] = "6.1.0-13-amd64"

    paths = reports(fleet, tmp_path, SAME, change)
    rc, doc, table = run_fleet(paths, "--profile", "deckhouse")  # Deckhouse requires it
    r = result(doc, "fleet.same-kernel")
    assert rc == 1 and r["status"] == "fail" and r["severity"] == "required"
    assert r["hosts"] == ["node-c"]
    assert "6.1.0-18-amd64 on node-a, node-b; 6.1.0-13-amd64 on node-c" in r["detail"]
    assert "install kernel 6.1.0-18-amd64" in r["recommendation"]
    assert "fleet checks fail: fleet.same-kernel" in table
    # generic only recommends it: a warning, and the fleet is ready
    rc, doc, _ = run_fleet(paths, "--profile", fleet.profile)
    assert rc == 0 and result(doc, "fleet.same-kernel")["status"] == "warn"


AVX512 = {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi",
          "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_vp2intersect"}


def test_a_host_missing_cpu_flags_is_named_with_the_flags(fleet, tmp_path):
    def change(name, doc):
        if name == "node-b":  # as a host whose BIOS or kernel hides AVX-512
            cpu = doc["host"]["cpu"]
            cpu["flags"] = [f for f in cpu["flags"] if f not in AVX512]
            cpu["x86_64_level"] = 3

    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    r = result(doc, "fleet.cpu-compatible")
    assert r["status"] == "warn" and rc == 0
    assert r["hosts"] == ["node-b"]
    assert "node-b lacks avx512bw avx512cd avx512dq avx512f avx512vl avx512_bitalg" in r["detail"]
    group = next(g for g in r["data"]["groups"] if g["hosts"] == ["node-b"])
    assert set(group["lacks"]) == AVX512
    others = next(g for g in r["data"]["groups"] if g["hosts"] == ["node-a", "node-c"])
    assert set(others["extra"]) == AVX512  # what a host-model guest started there would lose
    assert r["data"]["x86_64_level"] == 3
    # the recommendation: a named model inside what every host has
    assert "cpu_models = Skylake-Client-noTSX-IBRS" in r["recommendation"]
    assert "<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client-noTSX-IBRS" in \
        r["recommendation"]
    assert "virsh hypervisor-cpu-baseline" in r["recommendation"]
    assert "node-b lacks" in table and max(len(line) for line in table.splitlines()) <= 80


def test_a_host_without_vmx_is_named(fleet, tmp_path):
    def change(name, doc):
        if name == "node-c":
            cpu = doc["host"]["cpu"]
            cpu["flags"] = [f for f in cpu["flags"] if f != "vmx"]
            cpu["virt_flags"] = [f for f in cpu["virt_flags"] if f != "vmx"]

    _, doc, _ = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    r = result(doc, "fleet.cpu-compatible")
    assert r["status"] == "warn" and "node-c" in r["hosts"]
    assert "Virtualization flags differ" in r["detail"] and "node-c lacks vmx" in r["detail"]


def test_a_real_mixed_fleet(fleet, tmp_path):
    """Real reports of an Intel Debian host, an AMD Debian host and an AlmaLinux
    host on an old Intel CPU, each with its own kernel."""
    rc, doc, table = run_fleet(reports(fleet, tmp_path, ["node-a", "node-d", "node-e"]))
    assert rc == 1
    assert doc["profile"]["chosen"] == "default"  # the lab profile is not a built-in one
    k = result(doc, "fleet.same-kernel")
    assert k["status"] == "warn" and set(k["hosts"]) == {"node-d", "node-e"}  # generic: recommended
    cpu = result(doc, "fleet.cpu-compatible")
    assert cpu["status"] == "fail" and "different CPU vendors" in cpu["detail"]
    assert cpu["data"]["vendors"] == {"intel": ["node-a", "node-e"], "amd": ["node-d"]}
    assert "amd (1 host): cpu_models = EPYC" in cpu["recommendation"]
    v = result(doc, "fleet.versions")
    assert v["status"] == "warn"
    assert "QEMU 6.2 (node-e) -> 7.2 (node-a, node-d)" in v["detail"]
    assert "libvirt 8.0 (node-e) -> 9.0 (node-a, node-d)" in v["detail"]
    assert "different distributions" in v["detail"] and v["data"]["qemu_distributions"] == {
        "debian": ["node-a", "node-d"], "almalinux": ["node-e"]}
    assert "upgrade QEMU on node-e to 7.2 and libvirt on node-e to 9.0" in v["recommendation"]
    assert "fleet checks fail: fleet.cpu-compatible" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_mixed_qemu_versions_warn_with_the_direction(fleet, tmp_path):
    def change(name, doc):
        if name == "node-c":
            doc["host"]["packages"]["qemu"]["version"] = "1:8.2.2+ds-0ubuntu1"

    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    v = result(doc, "fleet.versions")
    assert rc == 0 and v["status"] == "warn"
    assert v["detail"].startswith("QEMU 7.2 (node-a, node-b) -> 8.2.2 (node-c); libvirt 9.0 on 3 hosts")
    assert "only to the same or a newer version (left to right), never back" in v["detail"]
    assert v["hosts"] == ["node-a", "node-b"]
    assert v["recommendation"].startswith("upgrade QEMU on node-a, node-b to 8.2.2")


def test_builds_of_one_qemu_version_pass(fleet, tmp_path):
    def change(name, doc):
        if name == "node-c":
            doc["host"]["packages"]["qemu"]["version"] = "1:7.2+dfsg-7+deb12u7"

    _, doc, _ = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    v = result(doc, "fleet.versions")
    assert v["status"] == "pass" and "QEMU 7.2 on 3 hosts (2 builds of it)" in v["detail"]


def test_duplicate_names_addresses_and_machine_ids_fail(fleet, tmp_path):
    a = fleet.docs["node-a"]["host"]

    def change(name, doc):
        h = doc["host"]
        if name == "node-b":
            h["hostname"] = "NODE-A."  # the same name to DNS
        if name == "node-c":
            h["network"] = copy.deepcopy(a["network"])
            h["machine_id"] = a["machine_id"]
        # libvirt's NAT bridge has the same address on every host, by design
        h["network"]["addresses"].append({"interface": "virbr0", "address": "192.168.122.1"})

    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    assert rc == 1
    names = result(doc, "fleet.unique-names")
    assert names["status"] == "fail" and "node-a in" in names["detail"] and "node-a.json" in names["detail"]
    addrs = result(doc, "fleet.unique-addresses")
    assert addrs["status"] == "fail" and set(addrs["data"]["duplicates"]) == {"192.0.2.11", "fd00::b"}
    assert "192.168.122.1" not in addrs["detail"] and "left out" in addrs["detail"]
    ids = result(doc, "fleet.unique-machine-ids")
    assert ids["status"] == "fail" and "a" * 32 in ids["detail"] and "systemd-machine-id-setup" in \
        ids["recommendation"]
    assert set(doc["summary"]["blocking"]) == {"fleet.unique-names", "fleet.unique-addresses",
                                               "fleet.unique-machine-ids"}
    assert f"node-a in {tmp_path / 'node-a.json'}, {tmp_path / 'node-b.json'}" in names["detail"]
    assert [h["name"] for h in doc["hosts"]] == ["node-a", "NODE-A.", "node-c"]


def test_hosts_of_one_name_are_told_apart_by_file(fleet, tmp_path):
    def change(name, doc):
        doc["host"]["hostname"] = "node"

    paths = reports(fleet, tmp_path, ["node-a", "node-b"], change)
    _, doc, table = run_fleet(paths, "--profile", fleet.profile)
    assert [h["name"] for h in doc["hosts"]] == [f"node ({p})" for p in paths]


def test_unknown_facts_are_said_not_guessed(fleet, tmp_path):
    def change(name, doc):
        if name == "node-b":
            doc["host"]["cpu"] = {"error": "/proc/cpuinfo: not a regular file (a FIFO)"}
            doc["host"]["network"] = {"management": None, "addresses": []}  # an offline root

    _, doc, _ = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    cpu = result(doc, "fleet.cpu-compatible")
    assert cpu["status"] == "warn" and "CPU unknown on node-b" in cpu["detail"]
    addrs = result(doc, "fleet.unique-addresses")
    assert addrs["status"] == "warn" and "no addresses in the reports of node-b" in addrs["detail"]
    assert doc["hosts"][1]["unreadable"] == {"cpu": "/proc/cpuinfo: not a regular file (a FIFO)"}


def test_text_from_reports_reaches_the_terminal_escaped(fleet, tmp_path):
    def change(name, doc):
        if name == "node-b":
            doc["host"]["kernel"]["release"] = "6.1.0\x1b]0;owned\x07-amd64"
            doc["host"]["hostname"] = "node-b\x1b[2J"

    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    assert "\x1b" not in table and "\x07" not in table
    assert "6.1.0\\x1b]0;owned\\x07-amd64" in table and "node-b\\x1b[2J" in table
    assert result(doc, "fleet.same-kernel")["hosts"] == ["node-b\x1b[2J"]  # JSON keeps it, escaped by JSON


def test_matrix_of_host_results(fleet, tmp_path):
    def change(name, doc):
        if name == "node-b":
            doc["summary"]["ready"] = False
            doc["summary"]["blocking"] = ["kvm.usable"]
            for c in doc["checks"]:
                if c["id"] == "kvm.usable":
                    c["status"] = "fail"

    rc, doc, table = run_fleet(reports(fleet, tmp_path, SAME, change), "--profile", fleet.profile)
    assert rc == 1 and doc["summary"]["not_ready"] == ["node-b"]
    m = doc["matrix"]
    assert len(m["checks"]) == len(fleet.docs["node-a"]["checks"]) and [r["host"] for r in m["rows"]] == list(SAME)
    col = m["checks"].index("kvm.usable")
    assert [r["statuses"][col] for r in m["rows"]] == ["skip", "fail", "skip"]
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80
    row_b = next(line for line in lines if line.startswith("  node-b "))
    assert "NOT READY" in row_b and " F" in row_b
    assert "Verdict: NOT READY - 1 of 3 hosts not ready: node-b" in table


def test_a_profile_says_which_fleet_checks_apply(fleet, tmp_path):
    paths = reports(fleet, tmp_path, SAME)
    _, doc, _ = run_fleet(paths, "--profile", "kubevirt")  # QEMU comes in virt-launcher's image
    assert "fleet.versions" not in {r["id"] for r in doc["fleet"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nextends: generic\nfleet:\n  same-kernl: required\n")
    r = kvmprep("fleet", *paths, "--profile", bad)
    assert r.returncode == 2 and "fleet.same-kernl: one of same-kernel, cpu-compatible" in r.stderr


def test_fleet_checks_and_profiles_agree():
    from checks.fleet.engine import FLEET_CHECKS
    from checks.profile import FLEET_DEFAULTS, load_profile

    assert list(FLEET_CHECKS) == list(FLEET_DEFAULTS)
    assert load_profile("generic").fleet == FLEET_DEFAULTS
    assert load_profile("deckhouse").fleet["fleet.same-kernel"] == "required"


# ---- bad input: exit 2, the file and the reason, one line -----------------------

def _doc(fleet):
    return copy.deepcopy(fleet.docs["node-a"])


def _bad_cases(fleet, d: Path):
    """(file, expected part of the reason)"""
    cases = []

    def write(name, data):
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    def doc_with(name, change):
        doc = _doc(fleet)
        change(doc)
        return write(name, json.dumps(doc))

    cases.append((d / "missing.json", "no such file"))
    (d / "adir").mkdir()
    cases.append((d / "adir", "not a regular file (a directory)"))
    os.mkfifo(d / "fifo.json")
    cases.append((d / "fifo.json", "not a regular file (a FIFO)"))
    big = d / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(5 << 20)
    cases.append((big, "larger than 4 MiB"))
    cases.append((write("empty.json", ""), "empty file"))
    cases.append((write("table.txt", "kvmprep 0.1.0  profile: generic\n"), "not JSON at line 1 column 1 (a YAML"))
    cases.append((write("report.yaml", yaml.safe_dump(_doc(fleet))), "write it with: kvmprep check --format json"))
    cases.append((write("cut.json", json.dumps(_doc(fleet))[:5000]), "not JSON at line 1"))
    cases.append((write("latin1.json", b'{"tool": "\xe9"}'), "not JSON"))
    cases.append((write("deep.json", "[" * 200000), "not JSON"))
    cases.append((write("array.json", "[1, 2]"), "not a kvmprep report (a JSON array, not an object)"))
    cases.append((write("other.json", '{"tool": {"name": "virt-host-validate"}}'), "not a kvmprep report"))
    cases.append((doc_with("old.json", lambda x: x.pop("format")), "before report format 1"))
    cases.append((doc_with("new.json", lambda x: x.update(format=2)), "report format 2 (kvmprep 0.1.0) is newer"))
    cases.append((doc_with("status.json", lambda x: x["checks"][0].update(status="ok")),
                  'checks[0].status: one of pass, warn, fail, skip, error, got "ok"'))
    cases.append((doc_with("flags.json", lambda x: x["host"]["cpu"].update(flags="vmx svm")),
                  'host.cpu.flags: a list of strings, got "vmx svm"'))
    cases.append((doc_with("addr.json", lambda x: x["host"]["network"]["addresses"].append(
        {"interface": "eth1", "address": "10.0.0.999"})), "host.network.addresses[2].address: an IP address"))
    cases.append((doc_with("ready.json", lambda x: x["summary"].update(ready="yes")), "summary.ready: true or false"))
    return cases


def test_bad_reports_exit_2_naming_file_and_reason(fleet, tmp_path):
    good = reports(fleet, tmp_path / "good", ["node-a"])[0]
    for path, reason in _bad_cases(fleet, tmp_path):
        r = kvmprep("fleet", good, path, timeout=30)
        assert r.returncode == 2, (path, r.stdout, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"kvmprep: {path}: "), r.stderr
        assert reason in lines[0], (reason, lines[0])
    r = kvmprep("fleet", good, good)
    assert r.returncode == 2 and "given twice" in r.stderr


def test_fleet_without_reports_is_a_usage_error():
    r = kvmprep("fleet")
    assert r.returncode == 2 and "REPORT.json" in r.stderr


# ---- pure functions --------------------------------------------------------------

def test_upstream_versions():
    from checks.fleet.versions import upstream

    assert upstream("1:7.2+dfsg-7+deb12u6") == (7, 2, 0)
    assert upstream("6.2.0-40.module_el8.9.0+3681+41cbbcc0") == (6, 2, 0)
    assert upstream("9.0.0-4+deb12u2") == upstream("9.0") and upstream("git") is None


def test_host_only_flags_do_not_count():
    from checks.fleet.cpumodels import best_model, guest_features

    assert guest_features(frozenset({"avx2", "constant_tsc", "ept", "hwp", "vmx"})) == {"avx2"}
    assert best_model("amd", frozenset()) is None
