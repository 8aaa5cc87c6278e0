"""user.groups and openstack.nova-conf on built root trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import accounts
from checks.model import Status

FIXTURES = Path(__file__).parent / "fixtures"  # not from conftest: tests/lab has a conftest of its own

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n"


def users_root(root, group):
    root.write("etc/passwd", PASSWD)
    root.write("etc/group", "root:x:0:\nalice:x:1000:\n" + group)
    return root


SUDO = {"SUDO_USER": "alice"}


# ---------------------------------------------------------------------------
# user.groups
# ---------------------------------------------------------------------------

def test_root_without_sudo_needs_nothing(root):
    users_root(root, "kvm:x:36:\n")
    r = root.check("user.groups")
    assert r.status is Status.PASS and "root needs no group membership" in r.detail


def test_sudo_user_in_both_groups(root):
    users_root(root, "kvm:x:36:bob,alice\nlibvirt:x:108:alice\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.PASS and "alice is in kvm, libvirt" in r.detail
    assert ("SUDO_USER", "alice") in [(e.source, e.value) for e in r.evidence]


def test_sudo_user_missing_a_group_fails_with_usermod(root):
    users_root(root, "kvm:x:36:alice\nlibvirt:x:108:\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.FAIL and "not in libvirt" in r.detail
    assert r.hint.startswith("usermod -aG libvirt alice") and "log out" in r.hint
    assert r.remediations == ["add-user-to-groups"]


def test_both_groups_missing_membership(root):
    users_root(root, "kvm:x:36:\nlibvirt:x:108:\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.FAIL and "usermod -aG kvm,libvirt alice" in r.hint


def test_primary_group_counts(root):
    root.write("etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:1000:36::/home/alice:/bin/sh\n")
    root.write("etc/group", "kvm:x:36:\nlibvirt:x:108:alice\n")
    assert root.check("user.groups", env=SUDO).status is Status.PASS


def test_group_not_created_yet_warns(root):
    users_root(root, "kvm:x:36:alice\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.WARN and "libvirt does not exist yet" in r.detail
    assert "install" in r.hint


def test_missing_group_and_missing_membership_fails_and_says_both(root):
    users_root(root, "kvm:x:36:\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.FAIL and "not in kvm" in r.detail and "does not exist yet" in r.detail


def test_old_libvirtd_group_name_is_accepted(root):
    users_root(root, "kvm:x:36:alice\nlibvirtd:x:108:alice\n")
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.PASS and "libvirtd" in r.detail


def test_groups_param(root):
    users_root(root, "kvm:x:36:alice\nlibvirt:x:108:\n")
    assert root.check("user.groups", {"groups": ["kvm"]}, env=SUDO).status is Status.PASS


def test_user_param_names_the_admin(root):
    users_root(root, "kvm:x:36:alice\nlibvirt:x:108:alice\n")
    r = root.check("user.groups", {"user": "alice"})
    assert r.status is Status.PASS and "alice" in r.detail


def test_member_on_disk_but_session_lacks_gid_needs_relogin(root, monkeypatch):
    users_root(root, "kvm:x:36:alice\nlibvirt:x:108:alice\n")
    monkeypatch.setattr(accounts, "session_gids", lambda: {1000, 36})
    r = root.check("user.groups", euid=1000, live=True)
    assert r.status is Status.WARN and "re-login needed" in r.detail and "libvirt" in r.detail
    assert "newgrp libvirt" in r.hint
    monkeypatch.setattr(accounts, "session_gids", lambda: {1000, 36, 108})
    assert root.check("user.groups", euid=1000, live=True).status is Status.PASS


def test_sudo_run_does_not_judge_roots_session(root, monkeypatch):
    users_root(root, "kvm:x:36:alice\nlibvirt:x:108:alice\n")
    monkeypatch.setattr(accounts, "session_gids", lambda: {0})
    assert root.check("user.groups", env=SUDO, live=True).status is Status.PASS


def test_unknown_user_skips(root):
    users_root(root, "kvm:x:36:\n")
    r = root.check("user.groups", euid=4242)
    assert r.status is Status.SKIP and "user" in r.detail


def test_missing_etc_group_skips(root):
    root.write("etc/passwd", PASSWD)
    r = root.check("user.groups", env=SUDO)
    assert r.status is Status.SKIP and "/etc/group" in r.detail


def test_garbled_etc_group_lines_are_ignored(root):
    users_root(root, "\x00\xff garbage\nkvm:x:notanumber:alice\n:::\nkvm:x:36:alice\nlibvirt:x:108:alice\n")
    assert root.check("user.groups", env=SUDO).status is Status.PASS


# ---------------------------------------------------------------------------
# openstack.nova-conf
# ---------------------------------------------------------------------------

NOVA = "/etc/nova/nova.conf"
EPYC = (FIXTURES / "cpu/x86_64-epyc_7451/proc/cpuinfo").read_text()
INTEL = (FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text()


def nova(root, text, path=NOVA):
    root.write(path, text)
    return root


def test_nova_missing_file_fails(root):
    root.mkdir("etc")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.FAIL and "nova-compute is not configured (no /etc/nova/nova.conf)" in r.detail
    assert r.remediations == ["configure-nova"]


def test_nova_kvm_host_passthrough_passes(root):
    nova(root, "[DEFAULT]\nmy_ip = 10.0.0.5\n\n[libvirt]\nvirt_type = kvm\ncpu_mode = host-passthrough\n")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.PASS and "virt_type = kvm, cpu_mode = host-passthrough" in r.detail
    assert any(e.value == "[libvirt] virt_type = kvm" for e in r.evidence)


def test_nova_defaults_are_kvm_and_host_model(root):
    nova(root, "[DEFAULT]\ndebug = false\n")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.PASS and "host-model" in r.detail
    assert any("defaults to kvm" in e.value for e in r.evidence)


def test_nova_qemu_is_emulation(root):
    nova(root, "[libvirt]\nvirt_type = qemu\n")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.FAIL and "emulation" in r.detail
    assert "virt_type = kvm" in r.hint and "[libvirt]" in r.hint


def test_nova_restart_command_follows_distribution(root):
    root.use("os/centos_8_1")
    nova(root, "[libvirt]\nvirt_type = qemu\n")
    assert "openstack-nova-compute" in root.check("openstack.nova-conf").hint


def test_nova_conf_d_overrides_later_wins(root):
    nova(root, "[libvirt]\nvirt_type = qemu\n")
    root.write("etc/nova/nova.conf.d/10-kvm.conf", "[libvirt]\nvirt_type = kvm\n")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.PASS
    assert any(e.source.endswith("nova.conf.d/10-kvm.conf") for e in r.evidence)
    root.write("etc/nova/nova.conf.d/20-qemu.conf", "[libvirt]\nvirt_type = qemu\n")
    assert root.check("openstack.nova-conf").status is Status.FAIL


def test_nova_ubuntu_nova_compute_conf(root):
    nova(root, "[DEFAULT]\n")
    root.write("etc/nova/nova-compute.conf", "[DEFAULT]\ncompute_driver=libvirt.LibvirtDriver\n[libvirt]\nvirt_type=qemu\n")
    assert root.check("openstack.nova-conf").status is Status.FAIL


def test_nova_default_section_does_not_leak(root):
    nova(root, "[DEFAULT]\nvirt_type = qemu\ncpu_mode = none\n[libvirt]\n")
    assert root.check("openstack.nova-conf").status is Status.PASS


@pytest.mark.parametrize("lines,status,words", [
    ("cpu_mode = custom\n", Status.FAIL, "without cpu_models"),
    ("cpu_mode = custom\ncpu_models = Cascadelake-Server\n", Status.PASS, "Cascadelake-Server"),
    ("cpu_mode = custom\ncpu_model = Haswell\n", Status.PASS, "Haswell"),
    ("cpu_mode = none\n", Status.FAIL, "cpu_mode = none"),
    ("cpu_mode = host-modell\n", Status.FAIL, "host-modell"),
    ('virt_type = "kvm"\ncpu_mode = \'host-model\'\n', Status.PASS, "host-model"),
    ("virt_type = kvm  # the default\n", Status.FAIL, "is not kvm"),
    ("virt_type = kvm\nvirt_type = qemu\n", Status.FAIL, "emulation"),
])
def test_nova_cpu_mode(root, lines, status, words):
    nova(root, "[libvirt]\n" + lines)
    r = root.check("openstack.nova-conf")
    assert r.status is status and words in r.detail, r.detail


@pytest.mark.parametrize("cpuinfo,extra,status,flag", [
    (EPYC, "", Status.FAIL, "svm"),
    (INTEL, "", Status.FAIL, "vmx"),
    (INTEL, "cpu_model_extra_flags = pcid, +vmx\n", Status.PASS, None),
    (INTEL, "cpu_model_extra_flags = -vmx\n", Status.FAIL, "vmx"),
])
def test_nova_nested_with_custom_model(root, cpuinfo, extra, status, flag):
    root.write("proc/cpuinfo", cpuinfo)
    nova(root, "[libvirt]\nvirt_type = kvm\ncpu_mode = custom\ncpu_models = Haswell\n" + extra)
    r = root.check("openstack.nova-conf", {"nested": True})
    assert r.status is status, r.detail
    if flag:
        assert f"cpu_model_extra_flags = {flag}" in r.hint
    assert root.check("openstack.nova-conf").status is Status.PASS  # nested not wanted


@pytest.mark.parametrize("text,line", [
    ("virt_type = kvm\n[libvirt]\n", "line 1"),
    ("[libvirt]\nvirt_type = kvm\nthis is not ini\n", "line 3"),
    (b"\x7fELF\x00\x00\xff\xfe", "line 1"),
])
def test_nova_garbled_names_file_and_line(root, text, line):
    nova(root, text)
    r = root.check("openstack.nova-conf")
    assert r.status is Status.FAIL and "nova.conf does not parse" in r.detail and line in r.detail


def test_nova_garbled_drop_in_is_named(root):
    nova(root, "[libvirt]\nvirt_type = kvm\n")
    root.write("etc/nova/nova.conf.d/99-bad.conf", "[libvirt\n")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.FAIL and "99-bad.conf" in r.detail


def test_nova_kolla_config_is_used_when_no_host_config(root):
    nova(root, "[libvirt]\nvirt_type = qemu\n", path="/etc/kolla/nova-compute/nova.conf")
    r = root.check("openstack.nova-conf")
    assert r.status is Status.FAIL and "emulation" in r.detail
