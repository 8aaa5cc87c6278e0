"""Users and groups of a root, read from its etc/passwd and etc/group."""

from __future__ import annotations

import os

from .host import Host
from .record import FrozenRecord


class Group(FrozenRecord):
    def __init__(self, name: str, gid: int, members: tuple[str, ...]):
        self._fields(name=name, gid=gid, members=members)


class User(FrozenRecord):
    def __init__(self, name: str, uid: int, gid: int):
        self._fields(name=name, uid=uid, gid=gid)


def read_groups(host: Host) -> dict[str, Group]:
    groups = {}
    for line in (host.read_text("/etc/group") or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) < 4 or not parts[2].isdigit():
            continue
        members = tuple(m for m in parts[3].split(",") if m)
        groups[parts[0]] = Group(parts[0], int(parts[2]), members)
    return groups


def read_users(host: Host) -> dict[str, User]:
    users = {}
    for line in (host.read_text("/etc/passwd") or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) < 4 or not parts[2].isdigit() or not parts[3].isdigit():
            continue
        users[parts[0]] = User(parts[0], int(parts[2]), int(parts[3]))
    return users


def invoking_user(host: Host) -> tuple[str | None, str]:
    """The admin behind this run: SUDO_USER when root via sudo, else the euid's name."""
    sudo_user = host.env.get("SUDO_USER")
    if host.is_root and sudo_user and sudo_user != "root":
        return sudo_user, "SUDO_USER"
    for u in read_users(host).values():
        if u.uid == host.euid:
            return u.name, "/etc/passwd (effective uid)"
    if host.live:
        try:
            import pwd

            return pwd.getpwuid(host.euid).pw_name, "passwd database"
        except KeyError:
            pass
    return (None if host.euid else "root"), f"uid {host.euid}"


def groups_of(host: Host, user: str) -> set[str]:
    """Group names the user belongs to per the root's files (primary included)."""
    groups = read_groups(host)
    users = read_users(host)
    names = {g.name for g in groups.values() if user in g.members}
    u = users.get(user)
    if u:
        names |= {g.name for g in groups.values() if g.gid == u.gid}
    return names


def session_gids() -> set[int]:
    """The groups this process really has now (a re-login picks up new ones)."""
    return set(os.getgroups()) | {os.getegid()}
