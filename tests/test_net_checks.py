"""Network checks against built roots and a copy of a real host's /proc/net (tests/fixtures/net).

Nothing here sends network traffic: every check reads files; the one runtime
ruleset test runs a fake ``nft`` script that prints JSON.
"""

from __future__ import annotations

import json
import socket
import textwrap

import pytest

from checks import firewall as fw
from checks.model import Status

VM = "net/debian12-vm"


def _hex(ip: str) -> str:
    return socket.inet_aton(ip)[::-1].hex().upper()


def proc_net(root, iface="eth0", addr="10.0.0.5", prefix=24, gw="10.0.0.1", arp_flags="0x2",
             extra_routes=()):
    """/proc/net tables of a host with one uplink (gw=None: no default route)."""
    mask = _hex(str(__import__("ipaddress").IPv4Network(f"0.0.0.0/{prefix}").netmask))
    net = str(__import__("ipaddress").IPv4Interface(f"{addr}/{prefix}").network.network_address)
    lines = ["Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"]
    if gw:
        lines.append(f"{iface}\t00000000\t{_hex(gw)}\t0003\t0\t0\t0\t00000000\t0\t0\t0")
    lines.append(f"{iface}\t{_hex(net)}\t00000000\t0001\t0\t0\t0\t{mask}\t0\t0\t0")
    for dev, cidr in extra_routes:
        n = __import__("ipaddress").IPv4Network(cidr)
        lines.append(f"{dev}\t{_hex(str(n.network_address))}\t00000000\t0001\t0\t0\t0\t{_hex(str(n.netmask))}\t0\t0\t0")
    root.write("proc/net/route", "\n".join(lines) + "\n")
    root.write("proc/net/fib_trie", f"Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- {addr}\n        /32 host LOCAL\n"
                                    "     |-- 127.0.0.1\n        /32 host LOCAL\n")
    arp = "IP address       HW type     Flags       HW address            Mask     Device\n"
    if gw and arp_flags:
        arp += f"{gw}         0x1         {arp_flags}         52:54:00:12:34:56     *        {iface}\n"
    root.write("proc/net/arp", arp)
    root.mkdir(f"sys/class/net/{iface}")
    root.write(f"sys/class/net/{iface}/address", "52:54:00:aa:bb:cc\n")


# ---- net.hostname ------------------------------------------------------------------

@pytest.mark.parametrize("name,params,status,words", [
    ("kvm01.example.com", {}, Status.PASS, "fully qualified"),
    ("kvm01", {}, Status.PASS, "short name"),
    ("kvm01", {"fqdn": True}, Status.WARN, "not a fully qualified"),
    ("kvm01.example.com", {"fqdn": True}, Status.PASS, "kvm01.example.com"),
    ("localhost", {}, Status.FAIL, "placeholder"),
    ("localhost.localdomain", {}, Status.FAIL, "placeholder"),
    ("kvm_01", {}, Status.FAIL, "RFC 1123"),
    ("-kvm", {}, Status.FAIL, "RFC 1123"),
    ("kvm..example", {}, Status.FAIL, "empty label"),
    ("a" * 64 + ".example.com", {}, Status.FAIL, "RFC 1123"),
])
def test_hostname(root, name, params, status, words):
    root.write("etc/hostname", name + "\n")
    r = root.check("net.hostname", params)
    assert r.status is status, r.detail
    assert words in r.detail
    if status is not Status.PASS:
        assert r.hint


def test_hostname_missing_empty_and_garbled(root):
    root.mkdir("etc")
    r = root.check("net.hostname")
    assert r.status is Status.FAIL and "missing" in r.detail
    root.write("etc/hostname", "\n")
    assert root.check("net.hostname").status is Status.FAIL
    root.write("etc/hostname", b"\xff\xfe\x00host\n")
    assert root.check("net.hostname").status is Status.FAIL


def test_hostname_legacy_sysconfig(root):
    root.write("etc/sysconfig/network", "NETWORKING=yes\nHOSTNAME=node7.lab.example\n")
    r = root.check("net.hostname")
    assert r.status is Status.PASS and "node7.lab.example" in r.detail


def test_hostname_real_vm(root):
    root.use(VM)
    r = root.check("net.hostname")
    assert r.status is Status.PASS and r.detail.startswith("vm ")


# ---- net.hosts-entry ---------------------------------------------------------------

def test_hosts_entry_real_vm_only_loopback(root):
    root.use(VM)  # "127.0.0.1 vm" only
    r = root.check("net.hosts-entry")
    assert r.status is Status.FAIL and "only to loopback" in r.detail
    assert "'192.0.2.2 vm'" in r.hint
    assert r.remediations == ["add-hosts-entry"]


def test_hosts_entry_hint_uses_search_domain(root):
    root.use(VM)
    root.write("etc/resolv.conf", "search lab.example.org\nnameserver 10.255.255.53\n")
    r = root.check("net.hosts-entry")
    assert "'192.0.2.2 vm.lab.example.org vm'" in r.hint


def test_hosts_entry_local_address_passes(root):
    root.use(VM)
    root.write("etc/hosts", "127.0.0.1 localhost\n192.0.2.2 vm.example.com vm\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.PASS and "192.0.2.2" in r.detail


def test_hosts_entry_fqdn_hostname_matches_short_alias(root):
    proc_net(root)
    root.write("etc/hostname", "kvm01.example.com\n")
    root.write("etc/hosts", "10.0.0.5 kvm01\n")
    assert root.check("net.hosts-entry").status is Status.PASS


def test_hosts_entry_foreign_address_fails(root):
    proc_net(root)
    root.write("etc/hostname", "kvm01\n")
    root.write("etc/hosts", "10.9.9.9 kvm01.example.com kvm01\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.FAIL and "not an address of this host" in r.detail
    assert "10.0.0.5 kvm01" in r.hint


def test_hosts_entry_loopback_first_warns(root):
    proc_net(root)
    root.write("etc/hostname", "kvm01\n")
    root.write("etc/hosts", "127.0.1.1 kvm01\n10.0.0.5 kvm01\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.WARN and "127.0.1.1" in r.detail


def test_hosts_entry_offline_compares_configured_addresses(root):
    root.write("etc/hostname", "kvm01\n")
    root.write("etc/hosts", "10.0.0.5 kvm01\n")
    assert root.check("net.hosts-entry").status is Status.PASS  # nothing to compare with
    root.write("etc/network/interfaces", "auto eth0\niface eth0 inet static\n  address 10.0.0.9/24\n"
                                         "  gateway 10.0.0.1\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.WARN and "10.0.0.9" in r.detail


def test_hosts_entry_missing_and_garbled(root):
    root.write("etc/hostname", "kvm01\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.FAIL and "missing" in r.detail
    root.write("etc/hosts", b"\x00\xff garbage kvm01\n::::: kvm01\n")
    r = root.check("net.hosts-entry")
    assert r.status is Status.FAIL and "does not mention" in r.detail


# ---- net.dns -----------------------------------------------------------------------

def test_dns_real_vm(root):
    root.use(VM)
    r = root.check("net.dns")
    assert r.status is Status.PASS and "10.255.255.53" in r.detail


def test_dns_no_nameserver_and_missing(root):
    root.write("etc/resolv.conf", "# generated\nsearch example.com\n")
    r = root.check("net.dns")
    assert r.status is Status.FAIL and "no nameserver" in r.detail
    (root.path / "etc/resolv.conf").unlink()
    r = root.check("net.dns")
    assert r.status is Status.FAIL and "missing" in r.detail


def test_dns_stub_needs_dns_setting(root):
    root.write("run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\noptions edns0\n")
    root.symlink("etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
    r = root.check("net.dns")
    assert r.status is Status.FAIL and "DNS=" in r.detail and "resolved.conf" in r.hint
    root.write("etc/systemd/resolved.conf", "[Resolve]\n#DNS=\n")
    root.write("etc/systemd/resolved.conf.d/50-dns.conf", "[Resolve]\nDNS=192.0.2.53 192.0.2.54\n")
    r = root.check("net.dns")
    assert r.status is Status.PASS and "192.0.2.53" in r.detail
    root.write("etc/systemd/resolved.conf.d/90-reset.conf", "[Resolve]\nDNS=\n")
    assert root.check("net.dns").status is Status.FAIL


def test_dns_stub_link_followed_inside_root_offline(root):
    # an absolute link whose target lives only in /run: created at boot by systemd-resolved
    root.symlink("etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf")
    root.write("etc/systemd/resolved.conf", "[Resolve]\nDNS=9.9.9.9\n")
    r = root.check("net.dns")
    assert r.status is Status.PASS and "9.9.9.9" in r.detail


def test_dns_absolute_link_resolves_in_root(root):
    root.write("run/NetworkManager/resolv.conf", "nameserver 198.51.100.1\n")
    root.symlink("etc/resolv.conf", "/run/NetworkManager/resolv.conf")
    r = root.check("net.dns")
    assert r.status is Status.PASS and "198.51.100.1" in r.detail


def test_dns_networkmanager_dns_none(root):
    root.write("etc/resolv.conf", "nameserver 192.0.2.53\n")
    root.write("etc/NetworkManager/NetworkManager.conf", "[main]\nplugins=keyfile\n")
    assert root.check("net.dns").status is Status.PASS  # generic: not required
    r = root.check("net.dns", {"nm_dns_none": True})
    assert r.status is Status.FAIL and "NetworkManager manages DNS" in r.detail
    assert "dns=none" in r.hint and r.remediations == ["networkmanager-dns-none"]
    root.write("etc/NetworkManager/conf.d/90-dns-none.conf", "[main]\ndns=none\n")
    assert root.check("net.dns", {"nm_dns_none": True}).status is Status.PASS
    root.write("etc/NetworkManager/conf.d/99-cloud.conf", "[main]\ndns=default\n")  # later file wins
    assert root.check("net.dns", {"nm_dns_none": True}).status is Status.FAIL


def test_dns_networkmanager_lib_confd_masked_by_etc(root):
    root.write("etc/resolv.conf", "nameserver 192.0.2.53\n")
    root.write("usr/lib/systemd/system/NetworkManager.service", "[Service]\nExecStart=/usr/sbin/NetworkManager\n")
    root.write("usr/lib/NetworkManager/conf.d/80-dns.conf", "[main]\ndns=none\n")
    assert root.check("net.dns", {"nm_dns_none": True}).status is Status.PASS
    root.write("etc/NetworkManager/conf.d/80-dns.conf", "")
    assert root.check("net.dns", {"nm_dns_none": True}).status is Status.FAIL


def test_dns_garbled(root):
    root.write("etc/resolv.conf", b"\xff\xfe\x00nameserver\n\x00\x00")
    r = root.check("net.dns")
    assert r.status is Status.FAIL


# ---- net.static-ip -------------------------------------------------------------------

@pytest.mark.parametrize("files,status,words", [
    ({"etc/network/interfaces": "auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet static\n"
      "    address 10.0.0.5\n    netmask 255.255.255.0\n    gateway 10.0.0.1\n"}, Status.PASS, "10.0.0.5/24"),
    ({"etc/network/interfaces": "source /etc/network/interfaces.d/*\n",
      "etc/network/interfaces.d/50-cloud-init": "auto eth0\niface eth0 inet dhcp\n"}, Status.FAIL, "DHCP"),
    ({"etc/NetworkManager/system-connections/uplink.nmconnection":
      "[connection]\nid=uplink\ntype=ethernet\ninterface-name=eth0\n[ipv4]\nmethod=manual\n"
      "address1=10.0.0.5/24,10.0.0.1\n"}, Status.PASS, "NetworkManager"),
    ({"etc/NetworkManager/system-connections/Wired.nmconnection":
      "[connection]\nid=Wired connection 1\ntype=ethernet\n[ethernet]\nmac-address=52:54:00:AA:BB:CC\n"
      "[ipv4]\nmethod=auto\n"}, Status.FAIL, "DHCP"),
    ({"etc/sysconfig/network-scripts/ifcfg-eth0": 'DEVICE=eth0\nBOOTPROTO="none"\nIPADDR=10.0.0.5\n'
      "PREFIX=24\nGATEWAY=10.0.0.1\nONBOOT=yes\n"}, Status.PASS, "ifcfg"),
    ({"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=dhcp\n"}, Status.FAIL, "ifcfg"),
    ({"etc/netplan/50-cloud-init.yaml": "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n"},
     Status.FAIL, "netplan"),
    ({"etc/netplan/01-static.yaml": "network:\n  ethernets:\n    uplink:\n      match: {macaddress: '52:54:00:aa:bb:cc'}\n"
      "      set-name: eth0\n      addresses: [10.0.0.5/24]\n      routes: [{to: default, via: 10.0.0.1}]\n"},
     Status.PASS, "netplan"),
    ({"etc/systemd/network/10-eth0.network": "[Match]\nName=eth0 en*\n[Network]\nDHCP=yes\n"}, Status.FAIL,
     "systemd-networkd"),
    ({"etc/systemd/network/10-eth0.network": "[Match]\nName=eth*\n[Network]\nAddress=10.0.0.5/24\n"
      "Gateway=10.0.0.1\n"}, Status.PASS, "systemd-networkd"),
    ({"etc/network/interfaces": "iface eth0 inet manual\n"}, Status.WARN, "no IPv4 address"),
])
def test_static_ip_sources(root, files, status, words):
    proc_net(root)
    for path, text in files.items():
        root.write(path, text)
    r = root.check("net.static-ip")
    assert r.status is status, r.detail
    assert words in r.detail
    if status is Status.FAIL:
        assert "10.0.0.5" in r.hint and "10.0.0.1" in r.hint


def test_static_ip_nm_hint_names_connection(root):
    proc_net(root)
    root.write("etc/NetworkManager/system-connections/Wired.nmconnection",
               "[connection]\nid=Wired connection 1\ninterface-name=eth0\ntype=ethernet\n[ipv4]\nmethod=auto\n")
    r = root.check("net.static-ip")
    assert r.hint.startswith("nmcli connection modify 'Wired connection 1' ipv4.method manual")


def test_static_ip_other_interface_config_does_not_count(root):
    proc_net(root)
    root.write("etc/network/interfaces", "iface eth1 inet dhcp\n")
    r = root.check("net.static-ip")
    assert r.status is Status.WARN and "no configuration file sets up eth0" in r.detail


def test_static_ip_real_vm_warns(root):
    root.use(VM)
    r = root.check("net.static-ip")
    assert r.status is Status.WARN and "eth0" in r.detail
    assert any(e.source == "looked in" for e in r.evidence)


def test_static_ip_garbled_netplan(root):
    proc_net(root)
    root.write("etc/netplan/50.yaml", "network: [\n  ethernets: {{{\n")
    r = root.check("net.static-ip")
    assert r.status is Status.WARN
    assert any("could not parse" == e.source for e in r.evidence)


def test_static_ip_offline_from_config_files(root):
    root.write("etc/sysconfig/network-scripts/ifcfg-ens3", "BOOTPROTO=static\nIPADDR=10.1.1.5\n"
                                                             "NETMASK=255.255.255.0\nGATEWAY=10.1.1.1\n")
    r = root.check("net.static-ip")
    assert r.status is Status.PASS and "ens3" in r.detail
    root.write("etc/netplan/50.yaml", "network:\n  ethernets:\n    ens4:\n      dhcp4: yes\n")
    assert root.check("net.static-ip").status is Status.FAIL


def test_static_ip_offline_nothing(root):
    root.mkdir("etc")
    r = root.check("net.static-ip")
    assert r.status is Status.WARN


def test_static_ip_unreadable_keyfile_needs_root(root):
    proc_net(root)
    p = root.write("etc/NetworkManager/system-connections/x.nmconnection",
                   "[connection]\ninterface-name=eth0\n[ipv4]\nmethod=manual\n", mode=0o000)
    r = root.check("net.static-ip", euid=1000)
    import os
    if os.geteuid() == 0:  # root reads a mode-000 file anyway
        assert r.status is Status.PASS
    else:
        assert r.status is Status.SKIP and "needs root" in r.detail
    p.chmod(0o600)


# ---- net.default-gateway ---------------------------------------------------------

def test_gateway_real_vm(root):
    root.use(VM)
    r = root.check("net.default-gateway")
    assert r.status is Status.PASS and "192.0.2.1" in r.detail


def test_gateway_missing_route(root):
    proc_net(root, gw=None)
    r = root.check("net.default-gateway")
    assert r.status is Status.FAIL and "no default route" in r.detail


@pytest.mark.parametrize("flags,words", [(None, "not seen yet"), ("0x0", "did not answer")])
def test_gateway_not_seen(root, flags, words):
    proc_net(root, arp_flags=flags)
    r = root.check("net.default-gateway")
    assert r.status is Status.WARN and words in r.detail


def test_gateway_ipv6_only(root):
    root.use(VM)
    root.write("proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n")
    r = root.check("net.default-gateway")
    assert r.status is Status.PASS and "fd00::1" in r.detail


def test_gateway_offline(root):
    root.write("etc/network/interfaces", "iface eth0 inet static\n address 10.0.0.5/24\n gateway 10.0.0.1\n")
    r = root.check("net.default-gateway")
    assert r.status is Status.PASS and "10.0.0.1" in r.detail
    (root.path / "etc/network/interfaces").write_text("iface eth0 inet dhcp\n")
    r = root.check("net.default-gateway")
    assert r.status is Status.SKIP and "DHCP" in r.detail


def test_gateway_garbled_route_table(root):
    root.write("proc/net/route", "garbage\n\x00\x01 zz yy\n")
    assert root.check("net.default-gateway").status is Status.FAIL


# ---- net.iface-names --------------------------------------------------------------

def test_iface_names(root):
    root.use(VM)
    root.write("sys/class/net/bonding_masters", "bond0\n")  # a file, not an interface
    r = root.check("net.iface-names")
    assert r.status is Status.PASS and "bonding_masters" not in r.detail
    root.mkdir("sys/class/net/сеть0")
    root.mkdir("sys/class/net/br 1")
    r = root.check("net.iface-names")
    assert r.status is Status.FAIL and "сеть0" in r.detail and "'br 1'" in r.detail


def test_iface_names_offline(root):
    root.write("etc/network/interfaces", "iface enp3s0 inet dhcp\n")
    r = root.check("net.iface-names")
    assert r.status is Status.PASS and "enp3s0" in r.detail
    (root.path / "etc/network/interfaces").unlink()
    assert root.check("net.iface-names").status is Status.SKIP


# ---- net.firewall-ports: firewalld ----------------------------------------------

def enable_unit(root, unit):
    root.write(f"usr/lib/systemd/system/{unit}", "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
    root.symlink(f"etc/systemd/system/multi-user.target.wants/{unit}", f"/usr/lib/systemd/system/{unit}")


def firewalld_root(root, zone_xml, default="public"):
    enable_unit(root, "firewalld.service")
    root.write("etc/firewalld/firewalld.conf", f"# firewalld config\nDefaultZone={default}\n")
    root.write("usr/lib/firewalld/services/ssh.xml",
               '<?xml version="1.0"?>\n<service><short>SSH</short><port protocol="tcp" port="22"/></service>\n')
    root.write("usr/lib/firewalld/services/libvirt-tls.xml",
               '<service><port protocol="tcp" port="16514"/></service>\n')
    root.write("usr/lib/firewalld/services/vmm.xml",
               '<service><include service="libvirt-tls"/><port protocol="tcp" port="5900-6900"/>'
               '<port protocol="tcp" port="49152-49215"/></service>\n')
    root.write("usr/lib/firewalld/zones/public.xml",
               '<?xml version="1.0" encoding="utf-8"?>\n<zone><short>Public</short>'
               '<service name="ssh"/><service name="dhcpv6-client"/></zone>\n')
    if zone_xml is not None:
        root.write(f"etc/firewalld/zones/{default}.xml", zone_xml)


def test_firewalld_default_public_zone_blocks(root):
    firewalld_root(root, None)
    r = root.check("net.firewall-ports")
    assert r.status is Status.FAIL, r.detail
    assert "16514/tcp" in r.detail and "5900-6900/tcp" in r.detail and "22/tcp" not in r.detail
    assert r.hint.startswith("firewall-cmd --permanent --zone=public --add-port=16514/tcp")
    assert "--add-port=5900-6900/tcp" in r.hint and r.hint.endswith("firewall-cmd --reload")
    assert r.remediations == ["open-firewall-ports"] and r.needs_root is False
    assert any("dhcpv6-client" in e.value for e in r.evidence)  # undefined service noted


def test_firewalld_zone_with_services_and_ports_passes(root):
    firewalld_root(root, '<zone><service name="ssh"/><service name="vmm"/></zone>')
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS, r.detail
    assert "firewalld (zone public)" in r.detail


def test_firewalld_partial_range(root):
    firewalld_root(root, '<zone><service name="ssh"/><port port="16514" protocol="tcp"/>'
                         '<port port="5900-6000" protocol="tcp"/><port port="49152-49215" protocol="tcp"/></zone>')
    r = root.check("net.firewall-ports")
    assert r.status is Status.FAIL and "5900-6900/tcp (6001-6900/tcp closed)" in r.detail
    assert "--add-port=6001-6900/tcp" in r.hint and "16514" not in r.hint


def test_firewalld_trusted_target_and_bound_zone(root):
    firewalld_root(root, None)
    root.write("etc/firewalld/zones/internal.xml", '<zone target="ACCEPT"><interface name="eth0"/></zone>')
    proc_net(root)
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS and "zone internal" in r.detail


def test_firewalld_rich_rules(root):
    firewalld_root(root, '<zone><rule family="ipv4"><source address="10.0.0.0/8"/>'
                         '<port port="1-65535" protocol="tcp"/><accept/></rule></zone>')
    assert root.check("net.firewall-ports").status is Status.PASS
    firewalld_root_rule = '<zone><rule family="ipv4"><source address="10.0.0.0/8"/><accept/></rule></zone>'
    root.write("etc/firewalld/zones/public.xml", firewalld_root_rule)
    r = root.check("net.firewall-ports")
    assert r.status is Status.WARN and "cannot decide" in r.detail


def test_firewalld_garbled_zone(root):
    firewalld_root(root, "<zone><service name=ssh></zone")
    r = root.check("net.firewall-ports")
    assert r.status is Status.WARN
    assert any("does not parse" in e.value for e in r.evidence)


def test_firewalld_missing_zone(root):
    firewalld_root(root, None, default="nosuch")
    r = root.check("net.firewall-ports")
    assert r.status is Status.WARN and any("nosuch" in e.value for e in r.evidence)


# ---- net.firewall-ports: ufw -------------------------------------------------------

UFW_RULES = textwrap.dedent("""\
    *filter
    :ufw-user-input - [0:0]
    ### RULES ###

    ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=7373680a
    -A ufw-user-input -p tcp --dport 22 -j ACCEPT

    ### tuple ### allow any 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in
    ### tuple ### allow tcp 16514 0.0.0.0/0 any 10.0.0.0/8 in
    ### tuple ### deny tcp 5900:5999 0.0.0.0/0 any 0.0.0.0/0 in
    ### tuple ### allow tcp 5900:6900 0.0.0.0/0 any 0.0.0.0/0 in
    ### tuple ### route:allow tcp 49152:49215 0.0.0.0/0 any 0.0.0.0/0 in
    ### END RULES ###
    COMMIT
""")


def test_ufw_first_match_and_default_policy(root):
    root.write("etc/ufw/ufw.conf", "# ufw\nENABLED=yes\nLOGLEVEL=low\n")
    root.write("etc/default/ufw", 'DEFAULT_INPUT_POLICY="DROP"\n')
    root.write("etc/ufw/user.rules", UFW_RULES)
    r = root.check("net.firewall-ports")
    assert r.status is Status.FAIL, r.detail
    assert "5900-6900/tcp (5900-5999/tcp closed)" in r.detail and "49152-49215/tcp" in r.detail
    assert "16514" not in r.detail  # allowed from 10.0.0.0/8: open to the platform's network
    assert r.hint == "ufw allow 5900:5999/tcp && ufw allow 49152:49215/tcp"


def test_ufw_default_accept(root):
    root.write("etc/ufw/ufw.conf", "ENABLED=yes\n")
    root.write("etc/default/ufw", 'DEFAULT_INPUT_POLICY="ACCEPT"\n')
    root.write("etc/ufw/user.rules", "### tuple ### deny tcp 16514 0.0.0.0/0 any 0.0.0.0/0 in\n")
    r = root.check("net.firewall-ports")
    assert r.status is Status.FAIL and r.detail.endswith("blocks 16514/tcp")


def test_ufw_disabled_is_no_firewall(root):
    root.write("etc/ufw/ufw.conf", "ENABLED=no\n")
    root.write("etc/ufw/user.rules", "garbage\x00\n")
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS and "no host firewall" in r.detail


# ---- net.firewall-ports: nftables / iptables -----------------------------------------

NFT_CONF = textwrap.dedent("""\
    #!/usr/sbin/nft -f
    flush ruleset

    table inet filter {
        set mgmt {
            type ipv4_addr
            elements = { 10.0.0.1, 10.0.0.2 }
        }
        chain input {
            type filter hook input priority filter; policy drop;
            ct state established,related accept  # replies
            iif "lo" accept
            ip protocol icmp accept
            tcp dport { 22, 16514,
                        5900-6900 } accept
            PLACEHOLDER
        }
        chain forward {
            type filter hook forward priority filter; policy drop;
        }
    }
""")


@pytest.mark.parametrize("extra,status", [
    ("tcp dport 49152-49215 counter accept", Status.PASS),
    ("", Status.FAIL),
    ("ip saddr @mgmt accept", Status.WARN),
    ("jump nowhere", Status.WARN),
])
def test_nftables_conf_offline(root, extra, status):
    enable_unit(root, "nftables.service")
    root.write("etc/nftables.conf", NFT_CONF.replace("PLACEHOLDER", extra))
    r = root.check("net.firewall-ports")
    assert r.status is status, r.detail
    if status is Status.FAIL:
        assert r.detail.endswith("blocks 49152-49215/tcp")
        assert r.hint.startswith("nft insert rule inet filter input tcp dport { 49152-49215 } accept")


def test_nftables_debian_default_conf_is_open(root):
    enable_unit(root, "nftables.service")
    root.write("etc/nftables.conf", "flush ruleset\n\ntable inet filter {\n\tchain input {\n"
                                    "\t\ttype filter hook input priority filter;\n\t}\n}\n")
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS, r.detail


def test_nftables_installed_but_disabled_offline(root):
    root.write("usr/lib/systemd/system/nftables.service", "[Install]\nWantedBy=sysinit.target\n")
    root.write("etc/nftables.conf", NFT_CONF.replace("PLACEHOLDER", ""))
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS and "no host firewall" in r.detail


def test_nftables_include_followed(root):
    enable_unit(root, "nftables.service")
    root.write("etc/sysconfig/nftables.conf", 'include "/etc/nftables/main.nft"\n')
    root.write("etc/nftables/main.nft", "table ip f {\n chain in {\n  type filter hook input priority 0; policy drop;\n"
                                        "  tcp dport 22 accept\n }\n}\n")
    r = root.check("net.firewall-ports", {"ports": ["22/tcp", "16514"]})
    assert r.status is Status.FAIL and r.detail.endswith("blocks 16514/tcp")


IPTABLES_SAVE = textwrap.dedent("""\
    # Generated by iptables-save v1.8.9
    *nat
    :PREROUTING ACCEPT [0:0]
    -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.9
    COMMIT
    *filter
    :INPUT DROP [0:0]
    :FORWARD DROP [0:0]
    :OUTPUT ACCEPT [0:0]
    :mgmt - [0:0]
    -A INPUT -i lo -j ACCEPT
    -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh in" -j ACCEPT
    -A INPUT -j mgmt
    -A mgmt -p tcp -m multiport --dports 16514,5900:6900 -j ACCEPT
    -A mgmt -p udp --dport 4789 -j ACCEPT
    -A mgmt -j RETURN
    COMMIT
""")


def test_iptables_rules_offline(root):
    enable_unit(root, "netfilter-persistent.service")
    root.write("etc/iptables/rules.v4", IPTABLES_SAVE)
    r = root.check("net.firewall-ports", {"ports": ["22/tcp", "16514/tcp", "5900-6900/tcp", "4789/udp",
                                                    "49152-49215/tcp", "not-a-port"]})
    assert r.status is Status.FAIL, r.detail
    assert r.detail.endswith("blocks 49152-49215/tcp")
    assert r.hint.startswith("iptables -I INPUT -p tcp -m multiport --dports 49152:49215 -j ACCEPT")
    assert any("not-a-port" in e.value for e in r.evidence)


def test_no_firewall_offline(root):
    root.mkdir("etc")
    r = root.check("net.firewall-ports")
    assert r.status is Status.PASS and "no host firewall filters incoming traffic" in r.detail


def test_live_runtime_needs_root(root):
    root.write("usr/sbin/nft", "")
    r = root.check("net.firewall-ports", euid=1000, live=True)
    assert r.status is Status.SKIP and "needs root" in r.detail


NFT_JSON = {"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "filter", "handle": 1}},
    {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter",
               "hook": "input", "prio": 0, "policy": "drop"}},
    {"chain": {"family": "inet", "table": "filter", "name": "mgmt", "handle": 2}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [
        {"vmap": {"key": {"ct": {"key": "state"}},
                  "data": {"set": [["established", {"accept": None}], ["related", {"accept": None}],
                                   ["invalid", {"drop": None}]]}}}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
        {"counter": {"packets": 0, "bytes": 0}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 7, "expr": [
        {"jump": {"target": "mgmt"}}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "mgmt", "handle": 8, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": {"set": [16514, {"range": [5900, 6900]}]}}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "mgmt", "handle": 9, "expr": [
        {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}},
                  "data": {"set": [[{"range": [49152, 49200]}, {"accept": None}]]}}}]}},
]}


def test_nft_json_model():
    rs = fw.nft_json_ruleset(NFT_JSON)
    assert [c.where for c in rs.base] == ["inet filter input"]
    assert fw.judge(rs, fw.PortSpec(22, 22, "tcp"))[fw.OPEN] == [(22, 22)]
    assert fw.judge(rs, fw.PortSpec(22, 22, "udp"))[fw.CLOSED] == [(22, 22)]
    states = fw.judge(rs, fw.PortSpec(49152, 49215, "tcp"))
    assert states[fw.OPEN] == [(49152, 49200)] and states[fw.CLOSED] == [(49201, 49215)]
    assert fw.nft_json_ruleset({"garbage": 1}).base == []
    assert fw.nft_json_ruleset([1, 2]).base == []


def test_live_runtime_with_fake_nft(root, tmp_path):
    """A live root run as root: the ruleset comes from `nft -j list ruleset` (a stub printing JSON)."""
    root.write("usr/sbin/nft", "")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "ruleset.json").write_text(json.dumps(NFT_JSON))
    stub = bindir / "nft"
    stub.write_text(f"#!/bin/sh\ncat '{tmp_path / 'ruleset.json'}'\n")
    stub.chmod(0o755)
    r = root.check("net.firewall-ports", euid=0, live=True, env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert r.status is Status.FAIL, r.detail
    assert r.detail.endswith("blocks 49152-49215/tcp (49201-49215/tcp closed)")
    assert r.hint.startswith("nft insert rule inet filter input tcp dport { 49201-49215 } accept")
    (tmp_path / "ruleset.json").write_text('{"nftables": [{"metainfo": {}}]}')
    r = root.check("net.firewall-ports", euid=0, live=True, env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert r.status is Status.PASS and "no input chain" in r.detail
    (tmp_path / "ruleset.json").write_text("not json")
    assert root.check("net.firewall-ports", euid=0, live=True, env={"PATH": f"{bindir}:/usr/bin:/bin"}).status is Status.WARN


@pytest.mark.parametrize("text,expected", [
    ("22/tcp", fw.PortSpec(22, 22, "tcp")),
    ("5900-6900/tcp", fw.PortSpec(5900, 6900, "tcp")),
    ("5900:6900/UDP", fw.PortSpec(5900, 6900, "udp")),
    ("16514", fw.PortSpec(16514, 16514, "tcp")),
    ("70000/tcp", None),
    ("ssh", None),
])
def test_port_specs(text, expected):
    assert fw.parse_port_spec(text) == expected


# ---- net.libvirt-subnet ---------------------------------------------------------

def test_libvirt_subnet_real_vm(root):
    root.use(VM)
    r = root.check("net.libvirt-subnet")
    assert r.status is Status.PASS and "192.168.122.0/24" in r.detail


def test_libvirt_subnet_overlaps_route(root):
    proc_net(root, extra_routes=[("eth1", "192.168.0.0/16")])
    r = root.check("net.libvirt-subnet")
    assert r.status is Status.FAIL and "192.168.0.0/16 dev eth1" in r.detail
    assert "virsh net-edit default" in r.hint and "172.16.122.0/24" in r.hint  # the /16 takes 192.168.*


def test_libvirt_subnet_own_bridge_and_local_address(root):
    proc_net(root, addr="192.168.122.1", gw=None, iface="virbr0",
             extra_routes=[("eth0", "10.0.0.0/24")])
    assert root.check("net.libvirt-subnet").status is Status.PASS
    proc_net(root, addr="192.168.122.7", gw="192.168.122.1", iface="eth0")
    r = root.check("net.libvirt-subnet")
    assert r.status is Status.FAIL and "192.168.122.0/24 dev eth0" in r.detail
    assert "192.168.123.0/24" in r.hint


def test_libvirt_subnet_from_etc_definition(root):
    proc_net(root)  # 10.0.0.0/24 on eth0
    root.write("usr/share/libvirt/networks/default.xml",
               "<network><name>default</name><ip address='192.168.122.1' netmask='255.255.255.0'/></network>")
    assert root.check("net.libvirt-subnet").status is Status.PASS
    root.write("etc/libvirt/qemu/networks/default.xml",
               "<network><name>default</name><bridge name='virbr0'/><ip address='10.0.0.129' prefix='25'/></network>")
    r = root.check("net.libvirt-subnet")
    assert r.status is Status.FAIL and "10.0.0.128/25" in r.detail


def test_libvirt_subnet_garbled_and_no_ip(root):
    proc_net(root)
    root.write("etc/libvirt/qemu/networks/default.xml", "<network><ip address=")
    assert root.check("net.libvirt-subnet").status is Status.WARN
    root.write("etc/libvirt/qemu/networks/default.xml", "<network><name>default</name><forward mode='bridge'/>"
                                                        "<bridge name='br0'/></network>")
    assert root.check("net.libvirt-subnet").status is Status.PASS


def test_libvirt_subnet_offline(root):
    root.mkdir("etc")
    assert root.check("net.libvirt-subnet").status is Status.SKIP
    root.write("etc/network/interfaces", "iface eth0 inet static\n  address 192.168.122.10/24\n")
    r = root.check("net.libvirt-subnet")
    assert r.status is Status.FAIL and "eth0 192.168.122.10/24" in r.detail


def test_live_runtime_falls_back_to_iptables_legacy(root, tmp_path):
    root.write("usr/sbin/iptables", "")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "rules").write_text(IPTABLES_SAVE)
    (bindir / "nft").write_text("#!/bin/sh\necho '{\"nftables\": [{\"metainfo\": {}}]}'\n")
    (bindir / "iptables-legacy-save").write_text(f"#!/bin/sh\ncat '{tmp_path / 'rules'}'\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    r = root.check("net.firewall-ports", euid=0, live=True, env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert r.status is Status.FAIL and r.detail.startswith("iptables (iptables filter INPUT) blocks")
    assert any(e.source == "iptables-legacy-save -t filter" for e in r.evidence)
