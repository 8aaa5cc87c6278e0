"""Distribution detection against real distributions' release files (tests/fixtures/os)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.host import Host
from checks.osrelease import detect_os, parse_os_release

FIXTURES = Path(__file__).parent / "fixtures"  # not from conftest: tests/lab has a conftest of its own


def detect(path):
    return detect_os(Host(path).read_text)


@pytest.mark.parametrize("tree,os_id,version,family,pm,source", [
    ("ubuntu_18.04", "ubuntu", "18.04", "debian", "apt", "/etc/os-release"),
    ("debian_10", "debian", "10", "debian", "apt", "/etc/os-release"),
    ("centos_8_1", "centos", "8.1", "rhel", "dnf", "/etc/os-release + /etc/centos-release"),
    ("fedora_31", "fedora", "31", "rhel", "dnf", "/etc/os-release"),
    ("opensuse_leap_15.1", "opensuse-leap", "15.1", "suse", "zypper", "/etc/os-release"),
    ("sles_15_6", "sles", "15.6", "suse", "zypper", "/etc/os-release"),
    ("amazon_linux_2_karoo", "amzn", "2", "rhel", "yum", "/etc/system-release"),
    ("archlinux_rolling", "arch", None, "unsupported", None, "/usr/lib/os-release"),
])
def test_every_fixture_tree(tree, os_id, version, family, pm, source):
    info = detect(FIXTURES / "os" / tree)
    assert (info.id, info.version, info.family, info.package_manager, info.source) == \
        (os_id, version, family, pm, source)


def test_every_fixture_tree_is_covered():
    trees = {p.name for p in (FIXTURES / "os").iterdir()}
    assert trees == {"ubuntu_18.04", "debian_10", "centos_8_1", "fedora_31", "opensuse_leap_15.1",
                     "sles_15_6", "amazon_linux_2_karoo", "archlinux_rolling"}


def test_names_and_codenames():
    assert detect(FIXTURES / "os/ubuntu_18.04").codename == "bionic"
    assert detect(FIXTURES / "os/ubuntu_18.04").like == ["debian"]
    assert detect(FIXTURES / "os/amazon_linux_2_karoo").name == "Amazon Linux release 2 (Karoo)"
    assert detect(FIXTURES / "os/centos_8_1").like == ["rhel", "fedora"]


def test_usr_lib_os_release_when_etc_is_missing(root):
    root.write("usr/lib/os-release", 'ID="almalinux"\nVERSION_ID="8.9"\nPRETTY_NAME="AlmaLinux 8.9"\n'
               'ID_LIKE="rhel centos fedora"\n')
    info = detect(root.path)
    assert (info.id, info.version, info.family, info.package_manager) == ("almalinux", "8.9", "rhel", "dnf")


def test_legacy_centos_7_release_file(root):
    root.write("etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n")
    info = detect(root.path)
    assert (info.id, info.version, info.package_manager) == ("centos", "7.9.2009", "yum")


def test_nothing_to_read(root):
    root.mkdir("etc")
    info = detect(root.path)
    assert info.id is None and info.family == "unsupported" and info.package_manager is None


def test_garbled_os_release_does_not_raise(root):
    root.write("etc/os-release", b"\xff\xfe\x00garbage\nID='unterminated\n=\n")
    info = detect(root.path)
    assert info.id == "unterminated"  # the value is taken as written, quotes dropped


def test_binary_os_release_falls_back(root):
    root.write("etc/os-release", b"\x00\x01\x02\x03")
    root.write("etc/debian_version", "12.5\n")
    info = detect(root.path)
    assert (info.id, info.version, info.source) == ("debian", "12.5", "/etc/debian_version")


def test_parse_comments_and_quotes():
    v = parse_os_release('# comment\nNAME="Foo Linux"\nID=foo\nVERSION_ID=\'1.2\'\nEMPTY=\n')
    assert v == {"NAME": "Foo Linux", "ID": "foo", "VERSION_ID": "1.2", "EMPTY": ""}


# ---- the family from the root's own files, for IDs kvmprep does not know --------


def _unknown_id(root, os_id="astra", like=""):
    root.write("etc/os-release", f'ID={os_id}\nNAME="Some Linux"\nVERSION_ID="1.7"\n'
               + (f'ID_LIKE="{like}"\n' if like else ""))
    return root


def _info(root):
    from checks.facts import Facts

    return Facts(root.host()).os


def test_debian_derivative_by_its_release_file_and_apt(root):
    _unknown_id(root)
    root.write("etc/debian_version", "12.5\n")
    root.write("var/lib/dpkg/status", "")
    root.write("usr/bin/apt-get", "")
    info = _info(root)
    assert (info.family, info.package_manager) == ("debian", "apt")
    assert "/etc/debian_version" in info.family_reason and "apt-get" in info.family_reason
    assert info.to_dict()["family_from"] == info.family_reason


def test_dnf_distribution_by_redhat_release_and_dnf(root):
    _unknown_id(root, "redos")
    root.write("etc/redhat-release", "RED OS release MUROM (7.3.4) DESKTOP\n")
    root.write("var/lib/rpm/rpmdb.sqlite", "")
    root.write("usr/bin/dnf", "")
    info = _info(root)
    assert (info.family, info.package_manager) == ("rhel", "dnf")
    assert info.family_reason.startswith("/etc/redhat-release")


def test_package_manager_alone_decides_when_unambiguous(root):
    _unknown_id(root, "somelinux")
    root.write("var/lib/dpkg/status", "")
    root.write("usr/bin/apt-get", "")
    assert _info(root).family == "debian"
    # a dnf as well, and no release file to tell: undecided, and said so
    root.write("var/lib/rpm/rpmdb.sqlite", "")
    root.write("usr/bin/dnf", "")
    info = _info(root)
    assert info.family == "unsupported" and info.package_manager is None
    assert "no ID, ID_LIKE, release file or package manager" in info.family_reason


def test_known_id_is_not_overridden_by_other_tools(root):
    """This build machine: Debian with rpm and dnf installed for the tests."""
    root.write("etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    root.write("var/lib/rpm/rpmdb.sqlite", "")
    root.write("usr/bin/dnf", "")
    info = _info(root)
    assert (info.family, info.package_manager, info.family_reason) == ("debian", "apt", "ID=debian")


def test_the_fixes_know_the_package_manager_of_a_derivative(root, tmp_path):
    import subprocess
    import sys

    _unknown_id(root)
    root.write("etc/debian_version", "12.5\n")
    root.write("var/lib/dpkg/status", "")
    root.write("usr/bin/apt-get", "")
    r = subprocess.run([sys.executable, "-m", "app", "plan", "--root", str(root.path), "--fix", "install-tools"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "apt-get" in r.stdout and "dmidecode" in r.stdout, r.stdout
    c = subprocess.run([sys.executable, "-m", "app", "check", "--root", str(root.path), "--format", "json"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    dist = next(x for x in __import__("json").loads(c.stdout)["checks"] if x["id"] == "os.distribution")
    assert dist["status"] == "fail" and "not a supported distribution" in dist["detail"]
    assert any("/etc/debian_version" in e["value"] for e in dist["evidence"]), dist
