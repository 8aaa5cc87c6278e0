"""Untrusted input, names: every name that reaches a command is validated
(checks/names.py), and profile list items are type-checked.

A package name such as ``-oDPkg::Pre-Invoke::=touch /x`` in a profile reaches
``apt-get install`` as an option that runs a shell command; ``rpm -q --pipe CMD``
runs one too; ``foo-`` makes ``apt-get install`` remove foo. Validators first,
then each planner and the profile loader, then the real CLI on a throwaway
Debian root: the bad name never appears in a command, no marker file is ever
created outside the root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checks import names, pkgdb, units
from checks.facts import Facts
from checks.host import Host
from checks.model import Status
from checks.names import BadName
from checks.profile import ProfileError, load_profile
from remediations.catalog import packages as fixpkg
from remediations.catalog.network import add_hosts_entry, open_firewall_ports
from remediations.catalog.users import add_user_to_groups
from remediations.registry import PlanCtx

from pkgroots import debian_root, deb_repo, dpkg_installed, require, systemctl  # noqa: F401

TOP = Path(__file__).resolve().parent.parent
OPTION = "-oDPkg::Pre-Invoke::=touch {marker}"
HOSTILE = ["-x", "--help", "-oDPkg::Pre-Invoke::=touch /tmp/x", "a b", "a\nb", "a\tb", "a;b", "a|b", "a&b",
           "$(touch x)", "`x`", "a>b", "a'b", 'a"b', "a\\b", "a/b", "../x", "", " ", "\x00", "ä", None, 123,
           1.5, ["x"], {"x": 1}]


# ------------------------------------------------------------------- the validators


@pytest.mark.parametrize("validator,args,good,bad", [
    (names.debian_package, (), ["dmidecode", "g++", "libc6:amd64", "python3.11", "0ad", "libstdc++6:i386"],
     ["a", "Foo", "foo-", "foo:", "foo:AMD", "foo=1.0", "foo/bookworm", "foo*", ".foo", "+foo", "x" * 256]),
    (names.rpm_package, (), ["qemu-kvm", "libstdc++", "Foo_bar", "perl-Net-SSLeay", "_x", "+x"],
     [".x", "x.rpm", "@core", "perl(Foo)", "foo>=1", "foo:1", "x" * 256]),
    (names.unit_name, (), ["libvirtd.service", "getty@tty1.service", "foo@.service", "virtqemud.socket",
                           "dev-sda1.device", "a\\x2db.mount"],
     ["foo", "foo.bogus", "@.service", "a@b@c.service", "x" * 250 + ".service"]),
    (names.user_name, (), ["alice", "john.doe", "m$", "_x", "a-b", "Admin"],
     ["123", ".", "..", "a$b", "x" * 33, "a:b", "a,b"]),
    (names.group_name, (), ["kvm", "libvirt", "libvirt-qemu"], ["0", "x" * 33]),
    (names.module_name, (), ["kvm_intel", "kvm-amd", "vhost_net"], ["x" * 56, "kvm.ko"]),
    (names.hostname, (), ["vm", "kvm01.example.com", "a-b.c", "x" * 63, ".".join(["x" * 63] * 3) + ".x"],
     ["a..b", "a.", ".a", "a-.b", "a_b", "x" * 64, ".".join(["x" * 63] * 4)]),
    (names.firewall_zone, (), ["public", "trusted", "my_zone-2"], ["x" * 18, "public.xml", "../etc"]),
    (names.port, (), ["22/tcp", "5900-6900/tcp", "546/udp", "1/sctp", "65535/dccp"],
     ["22", "0/tcp", "65536/tcp", "6900-5900/tcp", "22/icmp", "22/TCP", "22:23/tcp", "1-2-3/tcp"]),
    (names.kernel_arg, (), ["intel_iommu=on", "kvm_intel.nested=1", "selinux=0", "quiet", "intel_iommu=on,sm_on"],
     ["=x", "a=$(x)", "a='x'", "a=b c"]),
    (names.package_name, ("debian",), ["dmidecode", "g++"], ["Foo", "foo-", "x.rpm.x" + "-"]),
    (names.package_name, ("rhel",), ["Foo", "python3"], [".x", "x.rpm"]),
    (names.package_name, (None,), ["dmidecode"], ["Foo", "x.rpm", "foo-"]),
])
def test_validators_accept_names_and_refuse_the_rest(validator, args, good, bad):
    for name in good:
        assert validator(name, *args) == name
        assert names.is_valid(validator, name, *args)
    for name in bad + HOSTILE:
        with pytest.raises(BadName) as info:
            validator(name, *args)
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "\n" not in message and " is not a " in message and message.endswith(")"), message
        assert not names.is_valid(validator, name, *args)


def test_bad_names_say_why_on_one_line():
    cases = {
        "-oDPkg::Pre-Invoke::=touch /x": "starts with '-'",
        "foo bar": "contains a space",
        "foo\nbar": "contains a newline",
        "foo\x07": "contains a control character",
        "foo;rm": "contains ';'",
        "": "empty",
        "x" * 300: "longer than 255 characters",
        123: "not a string",
        "foo-": "apt-get install would remove the package",
    }
    for name, why in cases.items():
        with pytest.raises(BadName) as info:
            names.debian_package(name)
        assert why in str(info.value) and "\n" not in str(info.value), str(info.value)
        assert info.value.name == name
    assert len(str(BadName("x" * 1000, "package name", "too long"))) < 120  # the name is cut


def test_partition_keeps_order_and_names_each_refused_one():
    good, bad = names.partition(names.package_name, ["dmidecode", "-ox", 123, "python3", None], "debian")
    assert good == ["dmidecode", "python3"]
    assert [b.name for b in bad] == ["-ox", 123, None]


def test_names_module_imports_only_the_standard_library():
    import ast

    tree = ast.parse((TOP / "checks/names.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "re"}, imported


# ------------------------------------------------------------------- profile types


def _profile(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text("name: hostile\nextends: generic\nchecks:\n" + body)
    return f


@pytest.mark.parametrize("body,key,expected", [
    ("  packages.tools: {tools: [123, null]}\n", "checks.packages.tools.tools", "a list of strings"),
    ("  packages.tools: {tools: [dmidecode, [python3]]}\n", "checks.packages.tools.tools", "a list of strings"),
    ("  packages.tools: {tools: dmidecode}\n", "checks.packages.tools.tools", "a list of strings"),
    ("  cpu.arch: {allowed: [x86_64, 1]}\n", "checks.cpu.arch.allowed", "a list of strings"),
    ("  net.firewall-ports: {ports: [22]}\n", "checks.net.firewall-ports.ports", "a list of strings"),
    ("  user.groups: {groups: [kvm, {a: 1}]}\n", "checks.user.groups.groups", "a list of strings"),
    ("  packages.virtualization: {packages: [qemu-kvm]}\n", "checks.packages.virtualization.packages",
     "a mapping of distribution id or family to a list of strings"),
    ("  packages.virtualization: {packages: {debian: qemu-kvm}}\n", "checks.packages.virtualization.packages",
     "a mapping of distribution id or family to a list of strings"),
    ("  packages.virtualization: {packages: {debian: [1]}}\n", "checks.packages.virtualization.packages",
     "a mapping of distribution id or family to a list of strings"),
    ("  packages.virtualization: {packages: {12: [qemu-kvm]}}\n", "checks.packages.virtualization.packages",
     "a mapping of distribution id or family to a list of strings"),
    ("  os.distribution: {supported: [debian]}\n", "checks.os.distribution.supported", "a list of mappings"),
    ("  os.distribution: {supported: {id: debian}}\n", "checks.os.distribution.supported", "a list of mappings"),
])
def test_profile_list_items_are_type_checked(tmp_path, body, key, expected):
    f = _profile(tmp_path, body)
    with pytest.raises(ProfileError) as info:
        load_profile(str(f))
    assert info.value.key == key and info.value.expected.startswith(expected), str(info.value)
    assert "\n" not in str(info.value)


def test_profile_well_typed_lists_and_mappings_load(tmp_path):
    f = _profile(tmp_path, "  packages.tools: {tools: [dmidecode, chrony]}\n"
                           "  packages.virtualization: {packages: {debian: [qemu-kvm|qemu-system-x86], rhel: []}}\n"
                           "  os.distribution: {supported: [{id: debian, min: 11}, {id: rhel, min: '8'}]}\n"
                           "  net.firewall-ports: {ports: []}\n")
    p = load_profile(str(f))
    assert p.checks["packages.tools"].params["tools"] == ["dmidecode", "chrony"]
    assert p.checks["os.distribution"].params["supported"][0] == {"id": "debian", "min": 11}


# ------------------------------------------------------------------- checks


class _Os:
    def __init__(self, id_, family):
        self.id, self.family = id_, family


def test_override_from_never_stringifies_and_refuses_options():
    from checks.catalog import packages as pkgcheck

    params = {"packages": {"debian": [123, None, "-oDPkg::Pre-Invoke::=touch /x|qemu-kvm", "virtinst", "foo bar"]}}
    groups, bad = pkgcheck.override_packages(params, _Os("debian", "debian"))
    assert groups == [("qemu-kvm",), ("virtinst",)]
    assert len(bad) == 4 and all(b.startswith("profile packages.debian: ") for b in bad)
    assert "123 is not a package name (not a string)" in bad[0] and "None is not" in bad[1]
    assert "'-oDPkg::Pre-Invoke::=touch /x' is not a package name (starts with '-'" in bad[2]
    assert pkgcheck._override_from(params, _Os("debian", "debian")) == groups
    # a list with nothing valid left still replaces the defaults (and installs nothing)
    assert pkgcheck.override_packages({"packages": {"debian": ["-x"]}}, _Os("debian", "debian"))[0] == []


def test_checks_refuse_bad_profile_names_as_an_error_of_that_check(root, tmp_path):
    debian_root(root.path)
    marker = tmp_path / "MARKER"
    r = root.check("packages.tools", {"tools": ["dmidecode", OPTION.format(marker=marker)]})
    assert r.status is Status.ERROR and "parameter tools" in r.detail and "starts with '-'" in r.detail
    r = root.check("packages.virtualization", {"packages": {"debian": [OPTION.format(marker=marker)]}})
    assert r.status is Status.ERROR and "parameter packages" in r.detail and "packages.debian" in r.detail
    assert not marker.exists()


def test_rpm_query_gets_only_package_names_after_double_dash(root, tmp_path):
    """``rpm -q --pipe CMD`` runs CMD: such a name never reaches rpm (a real rpm on a real, empty database)."""
    require("rpm")
    marker = tmp_path / "MARKER"
    subprocess.run(["rpm", "--root", str(root.path), "--dbpath", "/var/lib/rpm", "--initdb"], check=True)
    host = Host(root.path)
    hostile = [f"--pipe=touch {marker}", "--eval=%(touch " + str(marker) + ")", "-qa", "dmidecode"]
    found, _ = pkgdb.installed(host, "rpm", hostile)
    assert found == {n: None for n in hostile}
    assert not marker.exists()
    seen = []
    host = Host(root.path)  # a new run: this one would answer dmidecode from its rpm -q memo
    real_run = host.run
    host.run = lambda argv, **kw: seen.append(argv) or real_run(argv, **kw)
    pkgdb.installed(host, "rpm", ["--pipe=x", "dmidecode"])
    assert seen and seen[0][-2:] == ["--", "dmidecode"] and not any("--pipe" in a for a in seen[0])


def test_systemctl_gets_only_unit_names_after_double_dash(root):
    root.write("usr/lib/systemd/system/-x.service", "[Unit]\n")
    root.write("usr/lib/systemd/system/ok.service", "[Unit]\n")
    host = Host(root.path)
    seen = []
    host.run = lambda argv, **kw: seen.append(argv) or subprocess.CompletedProcess(argv, 0, "disabled\n", "")
    states, _ = units.enabled_states(host, ["-x.service", "ok.service", "../../x.service"])
    assert states["-x.service"] == "not-found" and states["../../x.service"] == "not-found"
    assert seen == [["systemctl", f"--root={root.path}", "is-enabled", "--", "ok.service"]]


# ------------------------------------------------------------------- planners


def _ctx(path: Path, params: dict, **host_kw) -> PlanCtx:
    host = Host(path, **host_kw)
    return PlanCtx(host, Facts(host), {}, params)


def _argvs(proposal) -> list[list[str]]:
    return [c.argv for a in proposal.actions for c in a.commands()] + \
        [a.undo_argv for a in proposal.actions if getattr(a, "undo_argv", None)]


def test_install_tools_plans_the_valid_ones_and_names_the_bad_one(root, deb_repo, tmp_path):
    require("apt-get", "dpkg")
    debian_root(root.path, deb_repo)
    bad = OPTION.format(marker=tmp_path / "MARKER")
    prop = fixpkg.install_tools(_ctx(root.path, {"packages.tools": {"tools": [bad, "dmidecode", 123, "foo-"]}}))
    (action,) = prop.actions
    assert action.packages == ["dmidecode"]
    assert action.commands()[-1].argv[-4:] == ["-y", "--no-install-recommends", "--", "dmidecode"]
    notes = " ".join(prop.notes)
    assert "profile tools: '-oDPkg::Pre-Invoke::=touch " in notes and ": not installed" in notes
    assert "is not a package name (starts with '-'" in notes
    assert "123 is not a package name (not a string)" in notes and "'foo-'" in notes
    assert not any(bad in a for argv in _argvs(prop) for a in argv)
    only_bad = fixpkg.install_tools(_ctx(root.path, {"packages.tools": {"tools": [bad]}}))
    assert not only_bad.actions and only_bad.nothing.startswith("profile tools: '-oDPkg::Pre-Invoke::=touch ")
    assert "is not a package name" in only_bad.nothing


def test_install_virtualization_packages_leaves_out_bad_profile_names(root, deb_repo, tmp_path):
    require("apt-get", "dpkg")
    debian_root(root.path, deb_repo)
    bad = OPTION.format(marker=tmp_path / "MARKER")
    params = {"packages.virtualization": {"packages": {"debian": [f"{bad}|virtinst", "libvirt-clients"]}}}
    prop = fixpkg.install_virtualization_packages(_ctx(root.path, params))
    (action,) = prop.actions
    assert action.packages == ["virtinst", "libvirt-clients"]
    assert any(n.startswith("profile packages.debian: ") and "not installed" in n for n in prop.notes)
    assert not any(bad in a for argv in _argvs(prop) for a in argv)
    params = {"packages.virtualization": {"packages": {"debian": [bad]}}}
    prop = fixpkg.install_virtualization_packages(_ctx(root.path, params))
    assert not prop.actions and "profile packages.debian" in prop.nothing


def test_install_actions_refuse_a_bad_name_whoever_passes_it(root, deb_repo):
    require("apt-get", "dpkg")
    debian_root(root.path, deb_repo)
    with pytest.raises(fixpkg.CannotPlan, match="starts with '-'"):
        fixpkg.install_actions(_ctx(root.path, {}), "install-tools", ["dmidecode", "-oAPT::x=y"], why="t")


def _accounts(root, user="alice"):
    root.write("etc/passwd", f"root:x:0:0:root:/root:/bin/bash\n{user}:x:1000:1000::/home/a:/bin/sh\n")
    root.write("etc/group", f"root:x:0:\n{user}:x:1000:\nkvm:x:990:\nlibvirt:x:991:\n-g:x:992:\n")


@pytest.mark.parametrize("user", ["-R/tmp/x", "--help", "a b", "a\nb"])
def test_add_user_to_groups_refuses_a_user_that_is_not_a_name(root, user):
    _accounts(root, user)
    prop = add_user_to_groups(_ctx(root.path, {"user.groups": {"user": user}}))
    assert not prop.actions and prop.nothing.startswith("profile parameter user: ")
    assert "is not a user name" in prop.nothing and "\n" not in prop.nothing


def test_add_user_to_groups_adds_the_valid_groups_only(root):
    _accounts(root)
    prop = add_user_to_groups(_ctx(root.path, {"user.groups": {"user": "alice", "groups": ["kvm", "-g", "libvirt"]}}))
    (action,) = prop.actions
    assert action.user == "alice" and action.groups == ["kvm", "libvirt"]
    assert any(n.startswith("profile groups: '-g' is not a group name") for n in prop.notes)


def test_sudo_user_that_is_not_a_name_is_refused(root):
    _accounts(root, "-oops")
    prop = add_user_to_groups(_ctx(root.path, {}, env={"SUDO_USER": "-oops"}, euid=0))
    assert not prop.actions and prop.nothing.startswith("SUDO_USER: '-oops' is not a user name")


@pytest.mark.parametrize("hostname", ["-oops", "vm;touch", "a..b", "vm_1"])
def test_hosts_entry_refuses_a_hostname_that_is_not_one(root, hostname):
    root.use("net/debian12-vm")
    root.write("etc/hostname", hostname + "\n")
    prop = add_hosts_entry(_ctx(root.path, {}))
    assert not prop.actions and "is not a host name" in prop.nothing and "/etc/hostname" in prop.nothing


def test_hosts_entry_leaves_out_a_search_domain_that_is_not_one(root):
    root.use("net/debian12-vm")
    root.write("etc/resolv.conf", "search evil;touch.example\nnameserver 10.255.255.53\n")
    root.write("etc/hosts", "127.0.0.1 localhost\n")
    prop = add_hosts_entry(_ctx(root.path, {}))
    (action,) = prop.actions
    assert "192.0.2.2 vm\n" in action.content and "evil" not in action.content
    assert any("search domain" in n and "only vm is added" in n for n in prop.notes)


def _firewalld(root, zone):
    require("systemctl")
    root.write("usr/lib/systemd/system/firewalld.service",
               "[Unit]\nDescription=firewalld\n[Service]\nExecStart=/usr/sbin/firewalld\n"
               "[Install]\nWantedBy=multi-user.target\n")
    systemctl(root.path, "enable", "firewalld.service")
    root.write("etc/firewalld/firewalld.conf", f"DefaultZone={zone}\n")
    root.write("usr/lib/firewalld/zones/public.xml", "<zone>\n</zone>\n")


@pytest.mark.parametrize("zone", ["--permanent", "../../../etc/cron.d/x", "public;x", "a-very-long-zone-name",
                                  "public.xml"])
def test_firewall_zone_that_is_not_a_name_opens_nothing(root, zone):
    _firewalld(root, zone)
    for live in (False, True):
        if live:
            root.write("proc/812/comm", "firewalld\n")
            root.write("proc/812/cmdline", "/usr/sbin/firewalld\0")
        prop = open_firewall_ports(_ctx(root.path, {}, live=live))
        assert not prop.actions and "is not a firewalld zone name" in prop.nothing, prop.nothing
    assert not (root.path / "etc/cron.d").exists()


def test_firewall_ports_the_profile_cannot_name_are_said(root):
    _firewalld(root, "public")
    prop = open_firewall_ports(_ctx(root.path, {"net.firewall-ports": {"ports": ["16514/tcp", "--x", "22/icmp"]}}))
    (action,) = prop.actions
    assert '<port port="16514" protocol="tcp"/>' in action.content and "--x" not in action.content
    assert any("profile ports: '--x' is not a port" in n for n in prop.notes)


def test_kernel_argument_that_is_not_one_is_not_added(root):
    from remediations.bootloader import kernel_arg_proposal

    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX="intel_iommu=off,$(touch${IFS}x)"\n')
    ctx = _ctx(root.path, {})
    prop = kernel_arg_proposal(ctx, "a=$(x)", why="t")
    assert not prop.actions and "is not a kernel argument" in prop.nothing
    prop = kernel_arg_proposal(ctx, "intel_iommu=on", why="t", value=lambda old: "on," + (old or ""))
    assert not prop.actions and "GRUB's settings" in prop.nothing and "is not a kernel argument" in prop.nothing


# ------------------------------------------------------------------- the real CLI


def kvmprep(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "KVMPREP_DEBUG")}
    r = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                       stdin=subprocess.DEVNULL, timeout=timeout, env=env)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    return r


def _hostile_profile(tmp_path: Path, marker: Path, kind: str) -> Path:
    bad = OPTION.format(marker=marker)
    body = {
        "tools": f"  packages.tools: {{tools: [{json.dumps(bad)}, dmidecode]}}\n",
        "only-bad-tools": f"  packages.tools: {{tools: [{json.dumps(bad)}]}}\n",
        "packages": f"  packages.virtualization: {{packages: {{debian: [{json.dumps(bad)}, dmidecode]}}}}\n",
    }[kind]
    return _profile(tmp_path, body)


def _commands(plan: dict) -> list[str]:
    out = []
    for step in plan["steps"]:
        for action in step["actions"]:
            out += [a for c in action.get("cmds", []) for a in c["argv"]]
            out += list(action.get("argv") or []) + list(action.get("undo_argv") or [])
    return out


@pytest.mark.parametrize("kind,fix", [("tools", "install-tools"), ("only-bad-tools", "install-tools"),
                                      ("packages", "install-virtualization-packages")])
def test_cli_plan_never_puts_the_bad_name_in_a_command(tmp_path, deb_repo, kind, fix):
    require("apt-get", "dpkg")
    root = debian_root(tmp_path / "root", deb_repo)
    marker = tmp_path / "MARKER"
    profile = _hostile_profile(tmp_path, marker, kind)
    r = kvmprep("plan", "--root", str(root), "--profile", str(profile), "--fix", fix, "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert not any("Pre-Invoke" in a or str(marker) in a for a in _commands(plan))
    said = json.dumps(plan)
    assert "is not a package name" in said and "not installed" in said
    shown = "'-oDPkg::Pre-Invoke::=touch "  # the note names it (cut to one short line)
    if kind == "only-bad-tools":
        assert plan["steps"] == [] and shown in plan["nothing_to_do"][fix]
    else:
        (step,) = plan["steps"]
        assert step["actions"][0]["packages"] == ["dmidecode"]
        assert any(shown in n and "not installed" in n for n in step["notes"])
    text = kvmprep("plan", "--root", str(root), "--profile", str(profile), "--fix", fix)
    assert text.returncode == 0 and "Pre-Invoke" not in "".join(l for l in text.stdout.splitlines()
                                                                 if l.strip().startswith("$"))
    check = kvmprep("check", "--root", str(root), "--profile", str(profile), "--format", "json")
    assert check.returncode in (0, 1), check.stderr
    assert not marker.exists()


def test_cli_profile_with_non_strings_is_refused(tmp_path):
    profile = _profile(tmp_path, "  packages.tools: {tools: [123, null]}\n")
    root = tmp_path / "root"
    root.mkdir()
    r = kvmprep("plan", "--root", str(root), "--profile", str(profile), "--fix", "install-tools")
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "checks.packages.tools.tools: a list of strings, got [123, None]" in lines[0], r.stderr


@pytest.mark.parametrize("kind,fix", [("tools", "install-tools"), ("packages", "install-virtualization-packages")])
def test_cli_apply_installs_the_valid_names_and_never_runs_the_option(tmp_path, deb_repo, kind, fix):
    require("apt-get", "dpkg", "dpkg-query")
    if os.geteuid() != 0:
        pytest.skip("apply needs root")
    root = debian_root(tmp_path / "root", deb_repo)
    marker = tmp_path / "MARKER"
    profile = _hostile_profile(tmp_path, marker, kind)
    r = kvmprep("apply", "--root", str(root), "--profile", str(profile), "--fix", fix, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dmidecode" in dpkg_installed(root)
    assert not marker.exists()
    assert not (root / str(marker).lstrip("/")).exists()


def test_user_groups_check_refuses_names_that_would_go_into_its_hint(root):
    _accounts(root)
    r = root.check("user.groups", {"user": "alice; curl x | sh"})
    assert r.status is Status.ERROR and "profile parameter user" in r.detail and "is not a user name" in r.detail
    r = root.check("user.groups", {"user": "alice", "groups": ["kvm", "-x"]})
    assert r.status is Status.ERROR and "parameter groups" in r.detail and "'-x' is not a group name" in r.detail
