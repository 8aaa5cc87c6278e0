"""Remediations enable-iommu, add-hosts-entry, networkmanager-dns-none, open-firewall-ports and
configure-nova on throwaway roots: plan, preview, apply, plan again (empty), undo byte for byte.

Runtime steps (grubby, update-grub, firewall-cmd, ufw) are asserted at plan/preview level only;
where their order matters for undo, the executor runs them through a recording stand-in."""

from __future__ import annotations

import configparser
import shlex
import textwrap
from pathlib import Path

from checks.facts import Facts
from checks.model import Status
from remediations import executor as executor_mod
from remediations.actions import AddKernelArgs, RunCommand, WriteFile
from remediations.commands import CommandOutcome
from remediations.executor import apply_plan, undo_last
from remediations.plan import build_plan, render_preview
from remediations.registry import PlanCtx, all_remediations

from pkgroots import require, systemctl

REL = "6.1.0-18-amd64"
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nflags\t\t: fpu lm vmx\n\n"
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7451\nflags\t\t: fpu lm svm\n\n"


# ---- helpers -------------------------------------------------------------------------

def plan_for(host, rid):
    return build_plan(host, Facts(host), None, [rid])


def snapshot(root, *rels):
    return {r: ((root.path / r).read_bytes() if (root.path / r).exists() else None) for r in rels}


def assert_restored(root, snap):
    for rel, data in snap.items():
        p = root.path / rel
        if data is None:
            assert not p.exists(), rel
        else:
            assert p.read_bytes() == data, rel


def apply_replan_undo(root, rid, files, check_id=None, params=None, after=None):
    """Plan on a fresh host, apply, prove with the check, plan again (empty), undo byte for byte."""
    snap = snapshot(root, *files)
    host = root.host()
    plan = plan_for(host, rid)
    assert not plan.empty, plan.nothing_to_do
    result = apply_plan(host, plan)
    assert result.ok, [(a.summary, a.message) for a in result.actions]
    if after:
        after()
    if check_id:
        r = root.check(check_id, params=params)
        assert r.status is Status.PASS, r.detail
    again = plan_for(root.host(), rid)
    assert again.empty and rid in again.nothing_to_do, render_preview(again)
    undone = undo_last(root.host())
    assert undone.ok, undone.left
    assert_restored(root, snap)
    return plan


class Recorder:
    """Stands in for run_streaming: records each argv and the file it cares about at that moment."""

    def __init__(self, watch: Path):
        self.watch, self.calls = watch, []

    def __call__(self, argv, env=None, on_line=None, cwd=None):
        self.calls.append((list(argv), self.watch.read_text() if self.watch.exists() else None))
        return CommandOutcome(list(argv), 0, "")


# ---- enable-iommu ----------------------------------------------------------------------

DEBIAN_GRUB = textwrap.dedent("""\
    # If you change this file, run 'update-grub' afterwards to update
    # /boot/grub/grub.cfg.
    # For full documentation of the options in this file, see:
    #   info -f grub -n 'Simple configuration'

    GRUB_DEFAULT=0
    GRUB_TIMEOUT=5
    GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
    GRUB_CMDLINE_LINUX_DEFAULT="quiet"
    GRUB_CMDLINE_LINUX=""

    # Uncomment to disable graphical terminal (grub-pc only)
    #GRUB_TERMINAL=console
    """)

EL_GRUB = textwrap.dedent("""\
    GRUB_TIMEOUT=5
    GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
    GRUB_DEFAULT=saved
    GRUB_DISABLE_SUBMENU=true
    GRUB_TERMINAL_OUTPUT="console"
    GRUB_CMDLINE_LINUX="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/almalinux-swap rd.lvm.lv=almalinux/root"
    GRUB_DISABLE_RECOVERY="true"
    GRUB_ENABLE_BLSCFG=true
    """)

DEBIAN_OS = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
ALMA_OS = 'ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4"\n'


def grub_value(text: str, key: str) -> list[str]:
    """The kernel arguments in KEY=...: the value as the shell sees it (shlex, the last
    assignment wins), split on blanks as the kernel does."""
    words = None
    for line in text.splitlines():
        if line.startswith(key + "="):
            [value] = shlex.split(line[len(key) + 1:], comments=True) or [""]
            words = value.split()
    return words


def iommu_root(root, cpuinfo=INTEL, grub=DEBIAN_GRUB, os_release=DEBIAN_OS):
    root.write("proc/cpuinfo", cpuinfo)
    root.write("etc/os-release", os_release)
    if grub is not None:
        root.write("etc/default/grub", grub)


def test_iommu_offline_debian_edits_grub_only_and_undoes(root):
    iommu_root(root)
    plan = plan_for(root.host(), "enable-iommu")
    [step] = plan.steps
    [action] = step.actions
    assert isinstance(action, WriteFile) and action.path == "/etc/default/grub"
    assert action.reboot and not action.runtime
    assert any("offline root" in n and "update-grub" in n and "next kernel update" in n for n in step.notes)
    preview = render_preview(plan)
    assert '-GRUB_CMDLINE_LINUX=""' in preview and '+GRUB_CMDLINE_LINUX="intel_iommu=on"' in preview
    assert "pending reboot" in preview and "amd_iommu" not in preview

    old = DEBIAN_GRUB.splitlines(keepends=True)

    def after():
        new = (root.path / "etc/default/grub").read_text().splitlines(keepends=True)
        assert len(new) == len(old)
        changed = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
        assert [old[i] for i in changed] == ['GRUB_CMDLINE_LINUX=""\n']
        text = "".join(new)
        assert grub_value(text, "GRUB_CMDLINE_LINUX") == ["intel_iommu=on"]
        assert grub_value(text, "GRUB_CMDLINE_LINUX_DEFAULT") == ["quiet"]

    apply_replan_undo(root, "enable-iommu", ["etc/default/grub"], check_id="iommu.kernel", after=after)


def test_iommu_keeps_quoting_and_replaces_off_in_place(root):
    grub = DEBIAN_GRUB.replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"',
                               "GRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=off,sm_on' # was off")
    iommu_root(root, grub=grub)
    plan = plan_for(root.host(), "enable-iommu")
    [action] = plan.actions
    assert "GRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=on,sm_on' # was off\n" in action.content
    assert 'GRUB_CMDLINE_LINUX=""\n' in action.content  # not appended a second time elsewhere
    apply_replan_undo(root, "enable-iommu", ["etc/default/grub"], check_id="iommu.kernel")


def test_iommu_el_offline_appends_to_existing_value(root):
    iommu_root(root, grub=EL_GRUB, os_release=ALMA_OS)
    root.write("usr/sbin/grubby", "#!/bin/sh\n", mode=0o755)
    plan = plan_for(root.host(), "enable-iommu")
    [action] = plan.actions
    words = grub_value(action.content, "GRUB_CMDLINE_LINUX")
    assert words[-1] == "intel_iommu=on" and words[:-1] == grub_value(EL_GRUB, "GRUB_CMDLINE_LINUX")
    notes = " ".join(plan.steps[0].notes)
    assert "grub2-mkconfig -o /boot/grub2/grub.cfg" in notes and "grubby --update-kernel ALL --args intel_iommu=on" in notes
    apply_replan_undo(root, "enable-iommu", ["etc/default/grub"], check_id="iommu.kernel")


def test_iommu_grub_d_override_is_edited_where_it_is(root):
    iommu_root(root)
    root.write("etc/default/grub.d/50-cloudimg-settings.cfg",
               "# cloud image\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 intel_iommu=off\"\n")
    plan = plan_for(root.host(), "enable-iommu")
    [action] = plan.actions
    assert action.path == "/etc/default/grub.d/50-cloudimg-settings.cfg"
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 intel_iommu=on"' in action.content
    apply_replan_undo(root, "enable-iommu", ["etc/default/grub", "etc/default/grub.d/50-cloudimg-settings.cfg"],
                      check_id="iommu.kernel")


def test_iommu_live_debian_regenerates_and_undo_regenerates_after_restore(root, monkeypatch):
    iommu_root(root)
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n")
    root.write("usr/sbin/update-grub", "#!/bin/sh\n", mode=0o755)
    host = root.host(live=True)
    plan = plan_for(host, "enable-iommu")
    write, post = plan.actions
    assert isinstance(write, WriteFile) and write.reboot
    assert post.argv == ["update-grub"] and post.reboot and post.runtime
    # undo regenerates the menu once more, after the file is restored (undo_at_end)
    assert isinstance(post, RunCommand) and post.undo_argv == ["update-grub"] and post.undo_at_end
    preview = render_preview(plan)
    assert "$ update-grub\n" in preview
    assert preview.index("+GRUB_CMDLINE_LINUX=") < preview.index("$ update-grub")

    # the commands are not run on this machine: a stand-in records what ran, and when
    grub = root.path / "etc/default/grub"
    rec = Recorder(grub)
    monkeypatch.setattr(executor_mod, "run_streaming", rec)
    assert apply_plan(host, plan).ok
    assert [c[0] for c in rec.calls] == [["update-grub"]]
    assert "intel_iommu=on" in rec.calls[0][1]  # regenerated from the edited file
    assert plan_for(root.host(live=True), "enable-iommu").empty
    rec.calls.clear()
    assert undo_last(root.host(live=True)).ok
    assert grub.read_text() == DEBIAN_GRUB
    # the last regeneration of the undo sees the restored file
    assert rec.calls[-1] == (["update-grub"], DEBIAN_GRUB)


def test_iommu_live_settings_done_but_menu_stale_only_regenerates(root):
    iommu_root(root, grub=DEBIAN_GRUB.replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="intel_iommu=on"'))
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n")
    root.write("usr/sbin/update-grub", "#!/bin/sh\n", mode=0o755)
    entry = "menuentry 'Debian' {{\n\tlinux\t/vmlinuz-{rel} root=UUID=1234 ro {args} quiet\n}}\n"
    root.write("boot/grub/grub.cfg", entry.format(rel=REL, args=""))
    plan = plan_for(root.host(live=True), "enable-iommu")
    [action] = plan.actions
    assert isinstance(action, RunCommand) and action.argv == ["update-grub"] and action.reboot
    root.write("boot/grub/grub.cfg", entry.format(rel=REL, args="intel_iommu=on"))
    plan = plan_for(root.host(live=True), "enable-iommu")
    assert plan.empty and "next reboot" in plan.nothing_to_do["enable-iommu"]


def test_iommu_live_el_uses_grubby_at_preview_level(root):
    iommu_root(root, grub=EL_GRUB, os_release=ALMA_OS)
    root.write("proc/cmdline", "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.14 root=/dev/mapper/almalinux-root ro\n")
    root.write("usr/sbin/grubby", "#!/bin/sh\n", mode=0o755)
    root.write("usr/sbin/grub2-mkconfig", "#!/bin/sh\n", mode=0o755)
    root.write("boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf",
               "title AlmaLinux\nversion 5.14.0-427.el9.x86_64\nlinux /vmlinuz-5.14.0-427.el9.x86_64\n"
               "options root=/dev/mapper/almalinux-root ro crashkernel=1G-4G:192M\n")
    plan = plan_for(root.host(live=True), "enable-iommu")
    [action] = plan.actions
    assert isinstance(action, AddKernelArgs) and action.args == ["intel_iommu=on"]
    assert action.reboot and action.runtime
    assert "$ grubby --update-kernel ALL --args intel_iommu=on" in render_preview(plan)
    assert (root.path / "etc/default/grub").read_text() == EL_GRUB  # grubby path: the file is not edited
    # grubby did its work: every entry has it -> nothing to do (pending reboot)
    root.write("boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf",
               "title AlmaLinux\noptions root=/dev/mapper/almalinux-root ro intel_iommu=on\n")
    again = plan_for(root.host(live=True), "enable-iommu")
    assert again.empty and "next reboot" in again.nothing_to_do["enable-iommu"]


def test_iommu_el8_kernelopts_from_grubenv(root):
    iommu_root(root, grub=EL_GRUB, os_release=ALMA_OS)
    root.write("proc/cmdline", "ro\n")
    root.write("usr/sbin/grubby", "#!/bin/sh\n", mode=0o755)
    root.write("boot/loader/entries/x.conf", "title AlmaLinux 8\noptions $kernelopts $tuned_params\n")
    root.write("boot/grub2/grubenv", "# GRUB Environment Block\nkernelopts=root=/dev/sda2 ro\n" + "#" * 100)
    assert isinstance(plan_for(root.host(live=True), "enable-iommu").actions[0], AddKernelArgs)
    root.write("boot/grub2/grubenv", "# GRUB Environment Block\nkernelopts=root=/dev/sda2 ro intel_iommu=on\n")
    assert plan_for(root.host(live=True), "enable-iommu").empty


def test_iommu_amd_needs_no_argument(root):
    iommu_root(root, cpuinfo=AMD)
    plan = plan_for(root.host(), "enable-iommu")
    reason = plan.nothing_to_do["enable-iommu"]
    assert plan.empty and "firmware" in reason and "AMD-Vi" in reason
    assert "amd_iommu=on" not in render_preview(plan)


def test_iommu_nothing_to_do(root):
    iommu_root(root)
    root.mkdir(f"lib/modules/{REL}")
    root.write(f"boot/config-{REL}", "CONFIG_INTEL_IOMMU=y\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n")
    plan = plan_for(root.host(), "enable-iommu")
    assert plan.empty and "by default" in plan.nothing_to_do["enable-iommu"]
    # live, with IOMMU groups: the kernel already has it on
    root.write("proc/cmdline", "ro\n")
    root.mkdir("sys/kernel/iommu_groups/0")
    plan = plan_for(root.host(live=True), "enable-iommu")
    assert plan.empty and "1 IOMMU groups" in plan.nothing_to_do["enable-iommu"]


def test_iommu_without_grub_or_grubby(root):
    iommu_root(root, grub=None)
    plan = plan_for(root.host(), "enable-iommu")
    assert plan.empty and "by hand" in plan.nothing_to_do["enable-iommu"]


# ---- add-hosts-entry ----------------------------------------------------------------

VM = "net/debian12-vm"


def test_hosts_entry_real_vm_inserted_before_loopback_line(root):
    root.use(VM)
    assert root.check("net.hosts-entry").status is Status.FAIL
    plan = plan_for(root.host(), "add-hosts-entry")
    [action] = plan.actions
    assert action.content == "127.0.0.1 localhost\n127.0.0.1 runsc\n192.0.2.2 vm\n127.0.0.1 vm\n"
    preview = render_preview(plan)
    assert "+192.0.2.2 vm" in preview and "-127.0.0.1 vm" not in preview
    apply_replan_undo(root, "add-hosts-entry", ["etc/hosts"], check_id="net.hosts-entry")


def test_hosts_entry_fqdn_and_loopback_names(root):
    root.use(VM)
    root.write("etc/hostname", "kvm01.example.com\n")
    hosts = ("# static table\n127.0.0.1\tlocalhost kvm01  # local\n127.0.1.1\tkvm01.example.com\tkvm01\n\n"
             "::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n")
    root.write("etc/hosts", hosts)
    plan = plan_for(root.host(), "add-hosts-entry")
    [action] = plan.actions
    assert action.content == ("# static table\n127.0.0.1\tlocalhost  # local\n192.0.2.2 kvm01.example.com kvm01\n"
                              "127.0.1.1\tkvm01.example.com\tkvm01\n\n"
                              "::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n")
    apply_replan_undo(root, "add-hosts-entry", ["etc/hosts"], check_id="net.hosts-entry")


def test_hosts_entry_short_name_gets_search_domain_and_goes_after_loopback(root):
    root.use(VM)
    root.write("etc/resolv.conf", "search lab.example.net\nnameserver 10.255.255.53\n")
    root.write("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")
    plan = plan_for(root.host(), "add-hosts-entry")
    assert plan.actions[0].content == "127.0.0.1 localhost\n192.0.2.2 vm.lab.example.net vm\n::1 localhost\n"
    apply_replan_undo(root, "add-hosts-entry", ["etc/hosts"], check_id="net.hosts-entry")


def test_hosts_entry_own_line_after_loopback_is_moved_up(root):
    root.use(VM)
    root.write("etc/hosts", "127.0.0.1 localhost\n127.0.1.1 vm\n# mine\n192.0.2.2   vm # keep me\n")
    assert root.check("net.hosts-entry").status is Status.WARN
    plan = plan_for(root.host(), "add-hosts-entry")
    assert plan.actions[0].content == "127.0.0.1 localhost\n192.0.2.2   vm # keep me\n127.0.1.1 vm\n# mine\n"
    apply_replan_undo(root, "add-hosts-entry", ["etc/hosts"], check_id="net.hosts-entry")


def test_hosts_entry_foreign_address_left_with_a_note(root):
    root.use(VM)
    root.write("etc/hosts", "127.0.0.1 localhost\n10.9.9.9 vm\n")
    plan = plan_for(root.host(), "add-hosts-entry")
    assert plan.actions[0].content == "127.0.0.1 localhost\n192.0.2.2 vm\n10.9.9.9 vm\n"
    assert any("10.9.9.9" in n and "stale" in n for n in plan.steps[0].notes)
    apply_replan_undo(root, "add-hosts-entry", ["etc/hosts"], check_id="net.hosts-entry")


def test_hosts_entry_nothing_to_do(root):
    root.use(VM)
    root.write("etc/hosts", "127.0.0.1 localhost\n192.0.2.2 vm\n")
    plan = plan_for(root.host(), "add-hosts-entry")
    assert plan.empty and "192.0.2.2" in plan.nothing_to_do["add-hosts-entry"]
    # no route and no static configuration: the address cannot be told
    root2 = type(root)(root.path.parent / "bare")
    root2.write("etc/hostname", "vm\n")
    root2.write("etc/hosts", "127.0.0.1 localhost vm\n")
    plan = plan_for(root2.host(), "add-hosts-entry")
    assert plan.empty and "cannot tell this host's address" in plan.nothing_to_do["add-hosts-entry"]


# ---- networkmanager-dns-none ------------------------------------------------------

NM_CONF = "# Configuration file for NetworkManager.\n[main]\nplugins=ifcfg-rh,keyfile\n\n[logging]\n#level=DEBUG\n"
DROPIN = "etc/NetworkManager/conf.d/90-kvmprep-dns.conf"


def nm_root(root):
    root.write("etc/NetworkManager/NetworkManager.conf", NM_CONF)
    root.write("etc/resolv.conf", "# Generated by NetworkManager\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")


def test_nm_dns_none_dropin_and_undo(root):
    nm_root(root)
    assert root.check("net.dns", params={"nm_dns_none": True}).status is Status.FAIL
    plan = plan_for(root.host(), "networkmanager-dns-none")
    [step] = plan.steps
    [action] = step.actions
    assert action.path == "/" + DROPIN and action.original_sha256 is None
    notes = " ".join(step.notes)
    assert "192.0.2.53, 192.0.2.54" in notes and "does not touch it" in notes
    assert "+dns=none" in render_preview(plan)

    def after():
        cp = configparser.ConfigParser()
        cp.read(root.path / DROPIN)
        assert cp["main"]["dns"] == "none"
        assert (root.path / "etc/NetworkManager/NetworkManager.conf").read_text() == NM_CONF
        assert sorted(p.name for p in (root.path / "etc/NetworkManager/conf.d").iterdir()) == ["90-kvmprep-dns.conf"]

    apply_replan_undo(root, "networkmanager-dns-none",
                      [DROPIN, "etc/resolv.conf", "etc/NetworkManager/NetworkManager.conf"],
                      check_id="net.dns", params={"nm_dns_none": True}, after=after)
    assert not (root.path / DROPIN).exists()


def test_nm_dns_none_later_dropin_is_outranked(root):
    nm_root(root)
    root.write("usr/lib/NetworkManager/conf.d/95-vendor.conf", "[main]\ndns=systemd-resolved\n")
    plan = plan_for(root.host(), "networkmanager-dns-none")
    assert plan.actions[0].path == "/etc/NetworkManager/conf.d/99-kvmprep-dns.conf"
    apply_replan_undo(root, "networkmanager-dns-none", ["etc/NetworkManager/conf.d/99-kvmprep-dns.conf"],
                      check_id="net.dns", params={"nm_dns_none": True})


def test_nm_dns_none_live_note_says_reload_not_restart(root):
    nm_root(root)
    plan = plan_for(root.host(live=True), "networkmanager-dns-none")
    notes = " ".join(plan.steps[0].notes)
    assert "systemctl reload NetworkManager" in notes and "restart" in notes  # "does not ... restart"
    assert all(isinstance(a, WriteFile) for a in plan.actions)


def test_nm_dns_none_nothing_to_do(root):
    root.write("etc/resolv.conf", "nameserver 192.0.2.53\n")
    plan = plan_for(root.host(), "networkmanager-dns-none")
    assert plan.empty and "not installed" in plan.nothing_to_do["networkmanager-dns-none"]
    nm_root(root)
    root.write("etc/NetworkManager/conf.d/dns.conf", "[main]\ndns=none\n")
    plan = plan_for(root.host(), "networkmanager-dns-none")
    assert plan.empty and "dns=none" in plan.nothing_to_do["networkmanager-dns-none"]


# ---- open-firewall-ports -----------------------------------------------------------

PUBLIC_XML = textwrap.dedent("""\
    <?xml version="1.0" encoding="utf-8"?>
    <zone>
      <short>Public</short>
      <description>For use in public areas.</description>
      <service name="ssh"/>
      <service name="dhcpv6-client"/>
      <forward/>
    </zone>
    """)


def firewalld_root(root, enable=True):
    root.write("usr/lib/systemd/system/firewalld.service",
               "[Unit]\nDescription=firewalld\n[Service]\nExecStart=/usr/sbin/firewalld\n"
               "[Install]\nWantedBy=multi-user.target\n")
    if enable:
        systemctl(root.path, "enable", "firewalld.service")
    root.write("etc/firewalld/firewalld.conf", "# firewalld config file\nDefaultZone=public\n")
    root.write("usr/lib/firewalld/services/ssh.xml",
               '<?xml version="1.0" encoding="utf-8"?>\n<service>\n  <short>SSH</short>\n'
               '  <port protocol="tcp" port="22"/>\n</service>\n')
    root.write("usr/lib/firewalld/services/dhcpv6-client.xml",
               '<service>\n  <port protocol="udp" port="546"/>\n</service>\n')
    root.write("usr/lib/firewalld/zones/public.xml", PUBLIC_XML)


def test_firewalld_offline_zone_file_and_undo(root):
    require("systemctl")
    firewalld_root(root)
    assert root.check("net.firewall-ports").status is Status.FAIL
    plan = plan_for(root.host(), "open-firewall-ports")
    [action] = plan.actions
    assert isinstance(action, WriteFile) and action.path == "/etc/firewalld/zones/public.xml"
    assert action.content == PUBLIC_XML.replace(
        "</zone>", '  <port port="16514" protocol="tcp"/>\n  <port port="5900-6900" protocol="tcp"/>\n'
                   '  <port port="49152-49215" protocol="tcp"/>\n</zone>')
    assert "22" not in action.content.split("<forward/>")[1]  # ssh was open already
    assert not any("policy" in (a.why or "") for a in plan.actions)
    apply_replan_undo(root, "open-firewall-ports",
                      ["etc/firewalld/zones/public.xml", "usr/lib/firewalld/zones/public.xml"],
                      check_id="net.firewall-ports")


def test_firewalld_existing_etc_zone_only_missing_ports_added(root):
    require("systemctl")
    firewalld_root(root)
    etc = PUBLIC_XML.replace("</zone>", '  <port port="16514" protocol="tcp"/>\n  <port port="5900-6000" protocol="tcp"/>\n</zone>')
    root.write("etc/firewalld/zones/public.xml", etc)
    plan = plan_for(root.host(), "open-firewall-ports")
    [action] = plan.actions
    assert action.original_sha256 is not None
    assert action.content == etc.replace("</zone>", '  <port port="6001-6900" protocol="tcp"/>\n'
                                                    '  <port port="49152-49215" protocol="tcp"/>\n</zone>')
    apply_replan_undo(root, "open-firewall-ports", ["etc/firewalld/zones/public.xml"], check_id="net.firewall-ports")


def live_process(root, pid, comm, argv):
    root.write(f"proc/{pid}/comm", comm + "\n")
    root.write(f"proc/{pid}/cmdline", "\0".join(argv) + "\0")


def test_firewalld_live_runtime_and_permanent_without_reload(root):
    firewalld_root(root, enable=False)
    live_process(root, 812, "firewalld", ["/usr/bin/python3", "/usr/sbin/firewalld", "--nofork"])
    host = root.host(live=True, env={"SSH_CONNECTION": "198.51.100.7 52114 192.0.2.2 22"})
    plan = plan_for(host, "open-firewall-ports")
    now, permanent = plan.actions
    adds = ["--add-port=16514/tcp", "--add-port=5900-6900/tcp", "--add-port=49152-49215/tcp"]
    assert now.argv == ["firewall-cmd", "--zone=public", *adds] and now.runtime
    assert now.undo_argv == ["firewall-cmd", "--zone=public", *[a.replace("add", "remove") for a in adds]]
    assert permanent.argv == ["firewall-cmd", "--permanent", "--zone=public", *adds]
    assert permanent.undo_argv[:3] == ["firewall-cmd", "--permanent", "--zone=public"]
    preview = render_preview(plan)
    assert not any("--reload" in a.argv or "--set-default-zone" in " ".join(a.argv) for a in plan.actions)
    assert "$ firewall-cmd --permanent --zone=public --add-port=16514/tcp" in preview
    notes = " ".join(plan.steps[0].notes)
    assert "SSH" in notes and "never changes the default policy" in notes and "established connections" in notes


def test_firewalld_enabled_not_running_live_uses_offline_cmd(root):
    require("systemctl")
    firewalld_root(root)
    plan = plan_for(root.host(live=True), "open-firewall-ports")
    [action] = plan.actions
    assert action.argv[:2] == ["firewall-offline-cmd", "--zone=public"]
    assert action.undo_argv[2:] == ["--remove-port=16514/tcp", "--remove-port=5900-6900/tcp",
                                    "--remove-port=49152-49215/tcp"]


UFW_RULES = textwrap.dedent("""\
    *filter
    :ufw-user-input - [0:0]
    ### RULES ###

    ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
    -A ufw-user-input -p tcp --dport 22 -j ACCEPT

    ### tuple ### allow tcp 16514 0.0.0.0/0 any 0.0.0.0/0 in
    -A ufw-user-input -p tcp --dport 16514 -j ACCEPT

    ### END RULES ###
    COMMIT
    """)


def ufw_root(root):
    root.write("etc/ufw/ufw.conf", "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n")
    root.write("etc/default/ufw", 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n')
    root.write("etc/ufw/user.rules", UFW_RULES)


def test_ufw_live_allow_rules_with_undo(root):
    ufw_root(root)
    plan = plan_for(root.host(live=True), "open-firewall-ports")
    assert [a.argv for a in plan.actions] == [["ufw", "allow", "5900:6900/tcp"], ["ufw", "allow", "49152:49215/tcp"]]
    assert [a.undo_argv for a in plan.actions] == [["ufw", "delete", "allow", "5900:6900/tcp"],
                                                   ["ufw", "delete", "allow", "49152:49215/tcp"]]
    assert all(a.runtime for a in plan.actions)
    preview = render_preview(plan)
    assert "$ ufw allow 5900:6900/tcp" in preview and "ufw default" not in preview


def test_ufw_offline_gives_the_command(root):
    ufw_root(root)
    plan = plan_for(root.host(), "open-firewall-ports")
    assert plan.empty
    assert "ufw allow 5900:6900/tcp && ufw allow 49152:49215/tcp" in plan.nothing_to_do["open-firewall-ports"]
    assert (root.path / "etc/ufw/user.rules").read_text() == UFW_RULES


def test_nftables_rules_are_never_edited(root):
    require("systemctl")
    root.write("usr/lib/systemd/system/nftables.service",
               "[Service]\nExecStart=/usr/sbin/nft -f /etc/nftables.conf\n[Install]\nWantedBy=sysinit.target\n")
    systemctl(root.path, "enable", "nftables.service")
    conf = ("table inet filter {\n  chain input {\n    type filter hook input priority filter; policy drop;\n"
            "    tcp dport { 22, 16514, 5900-6900 } accept\n  }\n}\n")
    root.write("etc/nftables.conf", conf)
    plan = plan_for(root.host(), "open-firewall-ports")
    reason = plan.nothing_to_do["open-firewall-ports"]
    assert plan.empty and "nft insert rule inet filter input tcp dport { 49152-49215 } accept" in reason
    assert (root.path / "etc/nftables.conf").read_text() == conf


def test_firewall_nothing_to_do(root):
    plan = plan_for(root.host(), "open-firewall-ports")
    assert plan.empty and "no host firewall" in plan.nothing_to_do["open-firewall-ports"]


# ---- configure-nova -----------------------------------------------------------------

NOVA_CONF = textwrap.dedent("""\
    [DEFAULT]
    # Options defined in nova
    my_ip = 192.0.2.2
    transport_url = rabbit://openstack:secret@controller

    [api]
    auth_strategy = keystone

    [libvirt]
    # Describes the virtualization type (or so called domain type) libvirt should use.
    #virt_type = kvm
    virt_type = qemu

    # Is used to set the CPU mode an instance should have.
    #cpu_mode = <None>
    cpu_mode = none
    images_type = default

    [vnc]
    enabled = true
    server_listen = $my_ip
    """)


def sections_raw(text: str) -> dict[str, str]:
    """Each section's raw text (header to the next header)."""
    out, name, buf = {}, "", []
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            out[name] = "".join(buf)
            name, buf = line.strip(), []
        buf.append(line)
    out[name] = "".join(buf)
    return out


def test_nova_virt_type_and_cpu_mode_and_undo(root):
    root.write("etc/nova/nova.conf", NOVA_CONF, mode=0o640)
    assert root.check("openstack.nova-conf").status is Status.FAIL
    plan = plan_for(root.host(), "configure-nova")
    [step] = plan.steps
    [action] = step.actions
    assert "-virt_type = qemu\n+virt_type = kvm" in action.preview()
    assert "-cpu_mode = none\n+cpu_mode = host-model" in action.preview()
    assert any("nova-compute" in n and "starts" in n for n in step.notes)

    def after():
        text = (root.path / "etc/nova/nova.conf").read_text()
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(text)
        assert cp["libvirt"]["virt_type"] == "kvm" and cp["libvirt"]["cpu_mode"] == "host-model"
        assert cp["libvirt"]["images_type"] == "default"
        new, old = sections_raw(text), sections_raw(NOVA_CONF)
        assert list(new) == list(old)
        for name in old:
            if name != "[libvirt]":
                assert new[name] == old[name], name
        assert len(text.splitlines()) == len(NOVA_CONF.splitlines())
        assert (root.path / "etc/nova/nova.conf").stat().st_mode & 0o777 == 0o640

    apply_replan_undo(root, "configure-nova", ["etc/nova/nova.conf"], check_id="openstack.nova-conf", after=after)


def test_nova_nested_prefers_host_passthrough(root):
    root.write("etc/nova/nova.conf", NOVA_CONF)
    host = root.host()
    planner = all_remediations()["configure-nova"].planner
    prop = planner(PlanCtx(host, Facts(host), {}, {"openstack.nova-conf": {"nested": True}}))
    assert "cpu_mode = host-passthrough\n" in prop.actions[0].content


def test_nova_packaged_default_overridden_in_nova_conf_with_new_section(root):
    dist = "[DEFAULT]\nstate_path = /var/lib/nova\n\n[libvirt]\nvirt_type = qemu\n"
    main = "[DEFAULT]\n# local settings\nmy_ip = 192.0.2.2\n"
    root.write("usr/share/nova/nova-dist.conf", dist)
    root.write("etc/nova/nova.conf", main)
    plan = plan_for(root.host(), "configure-nova")
    [action] = plan.actions
    assert action.path == "/etc/nova/nova.conf"
    assert action.content == main + "\n[libvirt]\nvirt_type = kvm\n"
    apply_replan_undo(root, "configure-nova", ["etc/nova/nova.conf", "usr/share/nova/nova-dist.conf"],
                      check_id="openstack.nova-conf")
    assert (root.path / "usr/share/nova/nova-dist.conf").read_text() == dist


def test_nova_override_file_is_the_one_edited(root):
    main = "[DEFAULT]\n\n[libvirt]\nvirt_type = kvm\ncpu_mode = host-passthrough\n"
    override = "[DEFAULT]\ncompute_driver=libvirt.LibvirtDriver\n[libvirt]\nvirt_type=qemu\n"
    root.write("etc/nova/nova.conf", main)
    root.write("etc/nova/nova-compute.conf", override)
    plan = plan_for(root.host(), "configure-nova")
    [action] = plan.actions
    assert action.path == "/etc/nova/nova-compute.conf"
    assert action.content == override.replace("virt_type=qemu", "virt_type=kvm")
    apply_replan_undo(root, "configure-nova", ["etc/nova/nova.conf", "etc/nova/nova-compute.conf"],
                      check_id="openstack.nova-conf")


def test_nova_nothing_to_do(root):
    plan = plan_for(root.host(), "configure-nova")
    assert plan.empty and "install nova-compute first" in plan.nothing_to_do["configure-nova"]
    root.write("etc/nova/nova.conf", "[libvirt]\nvirt_type = kvm\ncpu_mode = host-model\n")
    plan = plan_for(root.host(), "configure-nova")
    assert plan.empty and "already right" in plan.nothing_to_do["configure-nova"]
    root.write("etc/nova/nova.conf", "[DEFAULT]\n")  # unset: Nova's defaults are kvm and host-model
    assert plan_for(root.host(), "configure-nova").empty
    root.write("etc/nova/nova.conf", "virt_type = qemu\n[libvirt\n")
    plan = plan_for(root.host(), "configure-nova")
    assert plan.empty and "does not parse" in plan.nothing_to_do["configure-nova"]
