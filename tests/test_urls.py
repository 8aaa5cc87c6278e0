"""checks/urls.url_parts gives what urllib.parse.urlparse gives for the URL
forms of apt, dnf and zypper sources."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from checks.urls import url_parts

URLS = [
    "http://deb.debian.org/debian",
    "https://Security.Debian.org/debian-security/",
    "http://user:secret@mirror.example.com:8080/debian/dists?x=1#frag",
    "https://[2001:db8::1]:443/ubuntu",
    "http://[FE80::1]/x",
    "ftp://ftp.ru.debian.org/debian/",
    "tor+https://deb.example.onion/debian",
    "mirror+file:/etc/apt/mirrors.txt",
    "file:/mnt/repo",
    "file:///mnt/repo",
    "copy:/var/cache/repo",
    "cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_]/",
    "dir:/srv/suse",
    "iso:/?iso=/srv/x.iso",
    "https://download.opensuse.org/repositories/home:/user/15.5/",
    "http://mirror.centos.org/$contentdir/$releasever/BaseOS/$basearch/os/",
    "https://mirrors.almalinux.org/mirrorlist/8/baseos",
    "HTTP://EXAMPLE.COM/Path",
    "",
    "not a url",
]


@pytest.mark.parametrize("url", URLS)
def test_same_as_urlparse(url):
    ours, theirs = url_parts(url), urlparse(url)
    assert ours.hostname == theirs.hostname
    assert ours.scheme == theirs.scheme
    assert ours.path == theirs.path
